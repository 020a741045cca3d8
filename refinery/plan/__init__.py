"""Planning: requirement files, the resolver (uv), per-node decisions, graph, waves and
matrix. Pure: never builds."""

from __future__ import annotations

import pytest

from refinery.core.models import NodeStatus, PlanNode, parse_node_key
from refinery.core.target import Target, platform_tags, wheel_rank
from refinery.plan import CycleError, assign_waves, build_matrix, matrices_by_wave


def node(
    name: str,
    deps: tuple[str, ...] = (),
    build: tuple[str, ...] = (),
    status: NodeStatus = NodeStatus.PENDING,
) -> PlanNode:
    return PlanNode(name, "1", "3.11", status, "", True, deps=deps, build_deps=build)


def k(name: str) -> str:
    return f"{name}==1@3.11"


def test_waves_follow_build_and_runtime_edges() -> None:
    nodes = [
        node("app", deps=(k("lib"), k("pure")), build=(k("cy"),)),
        node("lib", build=(k("cy"),)),
        node("cy"),
        node("pure", status=NodeStatus.REUSED),
    ]
    out, waves = assign_waves(nodes)
    assert waves == [[k("cy")], [k("lib")], [k("app")]]
    assert {n.name: n.wave for n in out} == {"app": 2, "lib": 1, "cy": 0, "pure": None}


def test_runtime_cycle_shares_a_wave_ordered_by_build_edges() -> None:
    nodes = [node("a", deps=(k("b"),)), node("b", deps=(k("a"),), build=(k("c"),)), node("c")]
    _, waves = assign_waves(nodes)
    assert waves == [[k("c")], [k("a"), k("b")]]


def test_build_cycle_is_an_error_naming_it() -> None:
    nodes = [node("a", build=(k("b"),)), node("b", build=(k("c"),)), node("c", build=(k("a"),))]
    with pytest.raises(CycleError, match=r"a==1@3.11 -> b==1@3.11 -> c==1@3.11 -> a==1@3.11"):
        assign_waves(nodes)


def test_self_build_dependency_is_a_cycle() -> None:
    with pytest.raises(CycleError, match=r"a==1@3.11 -> a==1@3.11"):
        assign_waves([node("a", build=(k("a"),))])


def test_600_nodes_shard_under_256_in_wave_order() -> None:
    waves = [[f"p{w}-{i}==1@3.11" for i in range(n)] for w, n in enumerate([450, 0, 140, 10])]
    shards = build_matrix(waves, 256)
    per_wave = matrices_by_wave({"include": [s.to_json() for s in shards]})
    assert [len(m["include"]) for m in per_wave] == [225, 140, 10]
    assert all(len(m["include"]) <= 256 for m in per_wave)
    seen = [key for s in shards for key in s.nodes]
    assert sorted(seen) == sorted(key for w in waves for key in w)
    assert len(seen) == len(set(seen)) == 600
    assert [s.wave for s in shards] == sorted(s.wave for s in shards)
    assert all(len({key.split("-")[0] for key in s.nodes}) == 1 for s in shards)


def test_small_max_jobs() -> None:
    shards = build_matrix([[f"n{i}==1@3.11" for i in range(10)]], 3)
    assert [len(s.nodes) for s in shards] == [4, 4, 2]


def test_target_tags() -> None:
    t = Target("3.11", "manylinux_2_28_s390x")
    assert platform_tags(t)[0] == "manylinux_2_28_s390x"
    assert platform_tags(t)[-1] == "manylinux2014_s390x"
    assert wheel_rank("x-1-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl", t) is not None
    assert wheel_rank("x-1-cp39-abi3-manylinux_2_28_s390x.whl", t) is not None
    assert wheel_rank("x-1-py3-none-any.whl", t) is not None
    assert wheel_rank("x-1-cp311-cp311-manylinux_2_34_s390x.whl", t) is None
    assert wheel_rank("x-1-cp311-cp311-manylinux_2_17_x86_64.whl", t) is None
    assert wheel_rank("x-1-cp312-cp312-manylinux_2_17_s390x.whl", t) is None
    assert wheel_rank("x-1-cp311-cp311-linux_s390x.whl", t) is None
    assert wheel_rank("x-1-cp311-cp311-musllinux_1_2_s390x.whl", t) is None
    native = wheel_rank("x-1-cp311-cp311-manylinux_2_17_s390x.whl", t)
    pure = wheel_rank("x-1-py3-none-any.whl", t)
    assert native is not None and pure is not None and native < pure


def test_node_keys() -> None:
    assert parse_node_key("MarkupSafe==2.1.5@3.11") == ("markupsafe", "2.1.5", "3.11")
    with pytest.raises(ValueError, match="NAME==VERSION@PYTHON"):
        parse_node_key("markupsafe")

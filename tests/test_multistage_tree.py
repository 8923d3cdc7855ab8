"""The information tree as mpi-sppy's tree (model.multistage; issue 24): node names,
the depth-first order of the subproblems, merging of identical scenarios, the default
cut and the columns of each node. No MPI needed (tests/test_distributed.py runs PH)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from model.errors import UsageError
from model.formulation.formulation import build_model
from model.formulation.policies import resolve_policy
from model.input.data import problem_data, restrict_scenarios
from model.input.instance import load_instance
from model.multistage import default_depth, node_columns, tree_cut

# A small unbalanced tree: 2026 splits in two (ban-2026 alone), 2027 in three, 2028 in
# six; au-term has a one-year lead time and au-expansion is a continuous project.
TREE = """\
schema: 1
name: small-unbalanced-tree
currency: USD
home: JP
periods: [2026, 2027, 2028]
discount_rate: 0.05
elements: [Dy]
demand: {Dy: 100}
shortage_penalty: {default: 5.0e+6}
stock: {initial: {Dy: 10}, capacity: {default: 200}, holding_cost: {default: 20000}}
sources:
  - {id: cn-spot, mined_in: CN, refined_in: CN, mode: spot,
     supply: {Dy: {capacity: 150, price: 300000}}}
  - {id: au-term, mined_in: AU, refined_in: MY, mode: contract, reservation_fee: 0.2,
     lead_time: 1, supply: {Dy: {capacity: 60, price: 500000}}}
  - {id: jp-recycling, mined_in: JP, refined_in: JP, mode: contract, reservation_fee: 0.1,
     recycled: true, supply: {Dy: {capacity: 20, price: 700000}}}
projects:
  - {id: au-expansion, source: au-term, capacity: {Dy: 40}, cost: 2.0e+7, build_time: 1,
     decide: {from: 2026, until: 2027}}
scenarios:
  - {id: calm, probability: 0.4}
  - id: ban-2028
    probability: 0.2
    disruptions: [{match: {mined_in: CN}, periods: [2028], availability: 0.0}]
  - id: squeeze-2027
    probability: 0.15
    disruptions: [{match: {mined_in: CN}, periods: [2027, 2028], availability: 0.5}]
  - id: squeeze-then-ban
    probability: 0.1
    disruptions:
      - {match: {mined_in: CN}, periods: [2027], availability: 0.5}
      - {match: {mined_in: CN}, periods: [2028], availability: 0.0}
  - id: squeeze-then-calm
    probability: 0.05
    disruptions: [{match: {mined_in: CN}, periods: [2027], availability: 0.5}]
  - id: ban-2026
    probability: 0.1
    disruptions: [{match: {mined_in: CN}, periods: [2026], availability: 0.0}]
    price_shocks: [{match: {mode: spot}, periods: [2026], multiplier: 2.0}]
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("tree") / "tree.yaml"
    path.write_text(TREE)
    return problem_data(load_instance(path))


def test_node_names_of_an_unbalanced_tree(data) -> None:
    """Every path is its own subproblem: names are the parent's plus _k, the scenarios in
    the depth-first order of their leaves, every node in all_nodenames."""
    cut = tree_cut(data, stages=4)
    assert cut.stages == 4 and cut.depth == 3
    assert cut.all_nodenames == ["ROOT", "ROOT_0", "ROOT_0_0", "ROOT_0_0_0", "ROOT_0_0_1",
                                 "ROOT_0_1", "ROOT_0_1_0", "ROOT_0_1_1", "ROOT_0_1_2",
                                 "ROOT_1", "ROOT_1_0", "ROOT_1_0_0"]
    names = [cut.data.scenarios[b[0]] for b in cut.bundles]
    assert names == ["calm", "ban-2028", "squeeze-2027", "squeeze-then-ban",
                     "squeeze-then-calm", "ban-2026"]
    assert cut.paths[1] == ["ROOT", "ROOT_0", "ROOT_0_0"]
    assert cut.paths[4] == ["ROOT", "ROOT_0", "ROOT_0_1"]
    assert cut.paths[5] == ["ROOT", "ROOT_1", "ROOT_1_0"]
    # conditional probabilities: 2026 holds 0.9 / 0.1; under ROOT_0, 0.6 / 0.3 of 0.9
    assert cut.cond_prob["ROOT_0"] == pytest.approx(0.9)
    assert cut.cond_prob["ROOT_0_1"] == pytest.approx(0.3 / 0.9)
    assert cut.cond_prob["ROOT_1_0"] == pytest.approx(1.0)
    assert cut.probability.sum() == pytest.approx(1.0)
    # the first subproblem under a node owns it (the plan copies its local values)
    assert cut.owner["ROOT_0_1"] == 2 and cut.owner["ROOT_1_0"] == 5


def test_cut_above_the_leaves_bundles_subtrees(data) -> None:
    cut = tree_cut(data, stages=3)
    assert [list(b) for b in cut.bundles] == [[0, 1], [2, 3, 4], [5]]
    assert cut.all_nodenames == ["ROOT", "ROOT_0", "ROOT_0_0", "ROOT_0_1", "ROOT_1",
                                 "ROOT_1_0"]
    assert cut.probability == pytest.approx([0.6, 0.3, 0.1])
    two = tree_cut(data, stages=2)              # two stages: ROOT only, as mpi-sppy wants
    assert two.all_nodenames is None and [list(b) for b in two.bundles] == [[0, 1, 2, 3, 4],
                                                                           [5]]
    with pytest.raises(UsageError, match="--stages must be from 2 to 4"):
        tree_cut(data, stages=5)


def test_default_cut(data) -> None:
    """The first row with a node per rank and at most MAX_PATHS paths under each."""
    D = data.decision_node
    assert default_depth(D, 1) == 1 and default_depth(D, 2) == 1
    assert default_depth(D, 3) == 2 and default_depth(D, 6) == 3
    assert default_depth(D, 7) == 3      # more ranks than paths: the leaves (refused later)
    assert tree_cut(data).stages == 2


def test_identical_scenarios_are_merged(tmp_path: Path) -> None:
    inst = yaml.safe_load(TREE)
    twin = dict(inst["scenarios"][1], id="ban-2028-twin", probability=0.05)
    inst["scenarios"][0]["probability"] = 0.35
    inst["scenarios"].append(twin)
    path = tmp_path / "twins.yaml"
    path.write_text(yaml.safe_dump(inst, sort_keys=False))
    d = problem_data(load_instance(path))
    cut = tree_cut(d, stages=4)
    assert len(cut.data.scenarios) == 6 and len(cut.names) == 6
    assert [list(m) for m in cut.members][1] == [1, 6]
    assert cut.data.probability[1] == pytest.approx(0.25)


def test_node_columns_hold_what_is_decided_there(data) -> None:
    """Root: contracts without lead time and au-term's 2026 volume; the 2026 node: the
    2026 stock, au-term's 2027 volume (lead time 1) and the 2026 project build; local:
    the 2026 deliveries and shortage."""
    cut = tree_cut(data, stages=4)
    keep = cut.bundles[0]
    sub = restrict_scenarios(cut.data, keep, probability=np.ones(1))
    built = build_model(sub, resolve_policy(load_instance_of(data), sub, "none"))
    ix = built.index
    au = list(data.sources["id"]).index("au-term")
    root, first = node_columns(sub, built, 0), node_columns(sub, built, 1)
    arcs = data.arc_source[ix.x_index[:, 0]]
    assert set(ix.x_index[root.x, 1][arcs[root.x] == au]) == {0}
    assert set(ix.x_index[first.x, 1]) == {1} and set(arcs[first.x]) == {au}
    assert len(root.stock) == 0 and len(first.stock) == 1 and not root.eta
    assert ix.y_index[first.y, 1].tolist() == [0]        # au-expansion decided in 2026
    assert ix.slot_t[ix.q_index[first.q, 2]].tolist() == [0] * len(first.q)
    assert len(first.u) == 1


def load_instance_of(data):
    """The Instance behind `data` (its policies), read again from the tree's text."""
    from model.input.instance import instance_from_dict

    return instance_from_dict(yaml.safe_load(TREE)).instance

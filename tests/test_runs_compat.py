"""Compatibility reports between a parent's spaces and the current config's."""

from __future__ import annotations

import pytest
from runs_factory import ACTIONS, make_spaces

from mission_gym.errors import CompatibilityError
from mission_gym.runs.compat import check_compatible, compare_spaces
from mission_gym.runs.record import Spaces


def test_identical_spaces_are_compatible():
    report = check_compatible(make_spaces(), Spaces(**make_spaces()))  # dicts and models both accepted
    assert report.ok


def test_added_defender_report():
    report = compare_spaces(make_spaces(defenders=1), make_spaces(defenders=2), parent_run="branch-20260122-193222")
    assert not report.ok
    text = report.text()
    parent_n, current_n = (len(make_spaces(defenders=d)["observation"]["feature_names"]) for d in (1, 2))
    assert text.startswith(
        "Observation space mismatch!\n"
        f'  Parent: {{"type": "Box", "shape": [{parent_n}]}}\n'
        f'  Current: {{"type": "Box", "shape": [{current_n}]}}\n'
    )
    assert "Features added: defender_1.* (6)" in text
    assert "Features removed" not in text
    assert "Action space mismatch!" not in text  # defenders are not controlled
    assert "Number of defenders: 1 -> 2 (configs/scenario.yaml)" in text
    assert "--run-name" in text and "runs/branch-20260122-193222/configs/" in text


def test_added_attacker_changes_both_spaces():
    text = compare_spaces(make_spaces(attackers=4), make_spaces(attackers=5)).text()
    assert "Observation space mismatch!" in text and "Action space mismatch!" in text
    assert '  Parent: {"type": "MultiDiscrete", "nvec": [9, 9, 9, 9]}' in text
    assert '  Current: {"type": "MultiDiscrete", "nvec": [9, 9, 9, 9, 9]}' in text
    assert "Features added: attacker_4.* (10)" in text
    assert "Controlled units: 4 -> 5" in text
    assert "Number of attackers: 4 -> 5" in text


def test_removed_defender_lists_removed_group():
    text = compare_spaces(make_spaces(defenders=3), make_spaces(defenders=2)).text()
    assert "Features removed: defender_2.* (6)" in text and "Number of defenders: 3 -> 2" in text


def test_changed_actions_same_count_is_still_a_mismatch():
    renamed = [*ACTIONS[:-1], "SCAN"]  # same nvec, different meaning of action 8
    text = compare_spaces(make_spaces(), make_spaces(actions=renamed)).text()
    assert "Action space mismatch!" in text
    assert "Unit 0 actions: added SCAN; removed NW" in text
    assert "Actions of UGV_A: added SCAN; removed NW (configs/units_*.yaml)" in text


def test_reordered_features_same_shape_is_a_mismatch():
    parent, current = make_spaces(), make_spaces()
    names = current["observation"]["feature_names"]
    names[0], names[1] = names[1], names[0]
    text = compare_spaces(parent, current).text()
    assert "Observation space mismatch!" in text
    assert "Features reordered: position 0 was 'attacker_0.x', is now 'attacker_0.y'" in text
    assert "different version" in text  # no count changed: the code's layout did


def test_individual_features_are_listed_when_group_exists_on_both_sides():
    parent, current = make_spaces(), make_spaces()
    current["observation"]["feature_names"].append("attacker_0.ammo")
    current["observation"]["shape"] = [len(current["observation"]["feature_names"])]
    assert "Features added: attacker_0.ammo" in compare_spaces(parent, current).text()


def test_undocumented_keys_are_compared_too():
    parent, current = make_spaces(), make_spaces()
    parent["observation"]["high"], current["observation"]["high"] = 1.0, 2.0
    text = compare_spaces(parent, current).text()
    assert "high: 1.0 -> 2.0" in text


def test_counts_only_change_is_reported():
    parent, current = make_spaces(), make_spaces()
    current["counts"]["defenders"] = 3  # e.g. a layout padded to a maximum: spaces equal, scenario not
    report = compare_spaces(parent, current)
    assert not report.ok and "Unit count mismatch!" in report.text()


@pytest.mark.parametrize("parent", [None, {}])
def test_parent_without_space_record_is_refused(parent):
    with pytest.raises(CompatibilityError, match="has no space record") as info:
        check_compatible(parent, make_spaces(), parent_run="old-run")
    assert "(run old-run)" in str(info.value) and "--run-name" in str(info.value)


def test_check_compatible_raises_with_report_text():
    with pytest.raises(CompatibilityError) as info:
        check_compatible(make_spaces(attackers=4), make_spaces(attackers=5))
    assert str(info.value) == compare_spaces(make_spaces(attackers=4), make_spaces(attackers=5)).text()


def test_entity_parent_with_other_unit_counts_is_compatible_by_transfer():
    report = check_compatible(make_spaces(attackers=4, defenders=2), make_spaces(attackers=5, defenders=3),
                              policy="entity")
    assert report.by_transfer and not report.ok
    assert report.transfer_changes == ("attackers 4 → 5", "defenders 2 → 3")
    assert report.text() == "attackers 4 → 5; defenders 2 → 3; weights transfer: entity policy"


def test_entity_parent_still_refuses_a_new_unit_type_or_action_list():
    parent = make_spaces(defenders=2)
    renamed = make_spaces(defenders=3, actions=[*ACTIONS[:-1], "SCAN"])
    with pytest.raises(CompatibilityError) as refused:
        check_compatible(parent, renamed, policy="entity")
    text = str(refused.value)
    assert "Actions of UGV_A: added SCAN; removed NW (configs/units_*.yaml)" in text
    assert "transfers across unit counts only" in text and "restore configs/scenario.yaml" in text
    assert "could branch here" not in text
    new_type = make_spaces(defenders=3)
    new_type["counts"]["actions_per_unit_type"]["UGV_C"] = list(ACTIONS)
    assert "Unit type UGV_C added" in compare_spaces(parent, new_type, policy="entity").text()
    assert not compare_spaces(parent, new_type, policy="entity").accepted


def test_entity_parent_refuses_a_changed_per_unit_feature_layout():
    current = make_spaces(defenders=3)
    names = current["observation"]["feature_names"]
    current["observation"]["feature_names"] = [n.replace("defender_0.dx", "defender_0.range") for n in names]
    assert not compare_spaces(make_spaces(defenders=2), current, policy="entity").accepted


def test_mlp_report_says_an_entity_policy_could_branch_on_a_count_change_only():
    line = "an entity-policy run could branch here"
    assert line in compare_spaces(make_spaces(defenders=2), make_spaces(defenders=3)).text()
    assert not compare_spaces(make_spaces(defenders=2), make_spaces(defenders=3)).accepted
    assert line not in compare_spaces(make_spaces(), make_spaces(actions=[*ACTIONS[:-1], "SCAN"])).text()

"""FidelityWeightedVoting: the public API and its rejections."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qverify.consensus import FidelityWeightedVoting, VoteRejected
from qverify.errors import ParameterError, QverifyError

NODES = [f"n{i}" for i in range(7)]


def make(f: int = 1, **kw) -> FidelityWeightedVoting:
    return FidelityWeightedVoting(NODES, f=f, **kw)


def test_equal_weights_with_f_at_least_n_over_3_refused():
    with pytest.raises(ParameterError, match="n ≥ 3f"):
        FidelityWeightedVoting(NODES[:6], f=2)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v, vote: replace(vote, signature=b"x" * 32), "forged"),
        (lambda v, vote: replace(vote, value="other"), "forged"),
        (lambda v, vote: v.sign("n1", 1, "A", epoch=v.epoch + 1), "future-epoch"),
    ],
)
def test_bad_votes_are_rejected_and_not_counted(mutate, reason):
    v = make()
    vote = mutate(v, v.sign("n1", 1, "A"))
    with pytest.raises(VoteRejected) as exc:
        v.cast(vote)
    assert exc.value.reason == reason
    assert v.cast(v.sign("n2", 1, "A")) is None  # n1's vote was not counted


def test_stale_epoch_duplicate_nonmember_equivocation():
    v = make()
    old = v.sign("n1", 3, "A")
    v.end_epoch()
    with pytest.raises(VoteRejected, match="stale-epoch"):
        v.cast(old)
    v.cast(v.sign("n1", 3, "A"))
    with pytest.raises(VoteRejected, match="duplicate"):
        v.cast(v.sign("n1", 3, "A"))
    with pytest.raises(VoteRejected, match="equivocation"):
        v.cast(v.sign("n1", 3, "B"))
    assert len(v.evidence) == 1
    with pytest.raises(VoteRejected, match="non-member"):
        v.sign("mallory", 3, "A")


def test_certificates_use_weighted_thresholds():
    v = make(f=2)
    q = v.quorum()
    assert (q.total, q.t_f, q.quorum, q.weak) == (7, 2, 5, 3)
    certs = [v.cast(v.sign(f"n{i}", 9, "A")) for i in range(5)]
    assert certs[1] is None
    assert certs[2].kind == "weak" and certs[2].weight == 3
    assert certs[4].kind == "quorum" and v.decision(9).value == "A"


def test_noisy_honest_nodes_lose_weight_but_keep_it_positive():
    v = make(f=1)
    for _ in range(5):
        for i in range(7):
            j = (i + 1) % 7
            q = 0.09 if i in (0, 1) or j in (0, 1) else 0.01  # both links of n0, n1 are noisy
            v.report_link(NODES[i], NODES[j], q, q)
        change = v.end_epoch()
        assert change.adopted
    w = v.weights().weights
    assert min(w) >= 1 and w[0] == w[1] == min(w)
    assert v.quorum().total >= 3 * v.quorum().t_f + 1


def test_liar_cannot_clean_its_links():
    v = make(f=1)
    # n0 lies (reports 0) but its neighbours see 0.1 on those links.
    for _ in range(3):
        v.report_link("n0", "n1", 0.0, 0.10)
        v.report_link("n6", "n0", 0.10, 0.0)
        for i in range(1, 6):
            v.report_link(NODES[i], NODES[i + 1], 0.01, 0.01)
        v.end_epoch()
    assert v.scores[0] < v.scores[3]


def test_unsafe_external_vector_fails_closed():
    v = make(f=2)
    before = v.weights().weights
    change = v.propose_weights([1, 1, 1, 1, 1, 5, 5])
    assert not change.adopted and change.alert and v.alerts
    assert v.weights().weights == before


def test_removal_only_on_proof():
    v = make()
    with pytest.raises(QverifyError, match="proof"):
        v.remove_node("n3")
    v.cast(v.sign("n3", 1, "A"))
    with pytest.raises(VoteRejected):
        v.cast(v.sign("n3", 1, "B"))
    v.remove_node("n3")
    with pytest.raises(VoteRejected, match="excluded"):
        v.cast(v.sign("n3", 2, "A"))
    assert v.weights().weights[3] == min(v.weights().weights)


def test_votes_carry_ed25519_signatures_no_key_from_a_name():
    # Issue: the default key of a node was derived from its name, so anyone could forge its votes.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    nodes = ["a", "b", "c", "d"]
    v1, v2 = FidelityWeightedVoting(nodes, f=1), FidelityWeightedVoting(nodes, f=1)
    vote = v1.sign("a", instance=1, value="x")
    assert len(vote.signature) == 64
    with pytest.raises(VoteRejected, match="forged"):
        v2.cast(vote)  # another instance has other keys: nothing is derived from "a"
    keys = {n: Ed25519PrivateKey.generate() for n in nodes}
    signer = FidelityWeightedVoting(nodes, f=1, keys=keys)
    verifier = FidelityWeightedVoting(nodes, f=1, public_keys={n: k.public_key() for n, k in keys.items()})
    assert verifier.cast(signer.sign("b", instance=2, value="y")) is None  # verifies; one vote, no certificate yet
    with pytest.raises(ParameterError, match="private key"):
        verifier.sign("b", instance=2, value="y")
    with pytest.raises(ParameterError, match=r"keys\['a'\]"):
        FidelityWeightedVoting(nodes, f=1, keys={n: b"secret" for n in nodes})


def test_link_reports_count_by_their_conservative_statistic():
    """A FidelityReport that carries ``qber_upper`` (the network's link reports: its claim's upper
    confidence bound) counts by it; one without counts by its point ``qber``."""
    from qverify.verify.report import FidelityReport
    from qverify.verify.stats import Estimate

    est = Estimate(0.98, 0.97, 0.99, 0.95, 100, "exact")

    def losses(upper: float | None) -> list[float]:
        v = make()
        for i in range(len(NODES)):
            a, b = NODES[i], NODES[(i + 1) % len(NODES)]
            for reporter in (a, b):
                q_up = upper if a == "n0" else None
                v.report(FidelityReport(f"{a}–{b}", "link", est, 0.011, 0.0, reporter, (a, b), qber_upper=q_up))
        v.end_epoch()
        return v.losses.tolist()

    point = losses(None)
    assert point == pytest.approx([0.1] * len(NODES))
    bounded = losses(0.055)  # n0–n1 weighs as its bound: n0's and n1's loss is its 0.5 over 0.11
    assert bounded[:2] == pytest.approx([0.5, 0.5]) and bounded[2:] == pytest.approx(point[2:])
    with pytest.raises(ParameterError, match="qber_upper"):
        make().report(FidelityReport("n0–n1", "link", est, 0.01, 0.0, "n0", ("n0", "n1"), qber_upper=0.7))

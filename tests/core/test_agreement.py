"""Processes of one launch that disagree on their job stop together, with the same sentence."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from spf_bench.core.agreement import check_agreement, fingerprint, tensors_fingerprint
from spf_bench.core.errors import SpfError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, folder: str, cases: list) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    outcomes = []
    for case in cases:
        try:
            check_agreement(case[rank], "this launch")
            outcomes.append(None)
        except SpfError as error:
            outcomes.append(str(error))
    with open(f"{folder}/rank-{rank}.json", "w") as handle:
        json.dump(outcomes, handle)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agreement")
    same = {"triple set": "abc", "options": {"steps": 10, "methods": ["ours"]}}
    cases = [
        [same, same],
        [{"triple set": "abc"}, {"triple set": "abd"}],
        [{"options": {"steps": 10, "methods": ["ours"]}}, {"options": {"steps": 10, "methods": ["naive"]}}],
        [{"weights": "w1"}, {"weights": "w1", "checkpoint": "c"}],
    ]
    mp.spawn(_worker, args=(_free_port(), str(folder), cases), nprocs=2, join=True)
    return [json.loads((folder / f"rank-{r}.json").read_text()) for r in (0, 1)]


def test_agreeing_processes_go_on(outcomes):
    assert outcomes[0][0] is None and outcomes[1][0] is None


def test_every_process_stops_with_the_same_sentence_naming_what_differs(outcomes):
    r0, r1 = outcomes
    assert r0[1:] == r1[1:]
    assert r0[1].startswith("The 2 processes of this launch disagree on triple set (triple set: process 0 abc, process 1 abd)")
    assert "disagree on options 'methods' (options 'methods': process 0 [\"ours\"], process 1 [\"naive\"])" in r0[2]
    assert "disagree on checkpoint (checkpoint: process 0 None, process 1 c)" in r0[3]
    assert all(m.count(". ") == 0 and m.endswith("weights.") for m in r0[1:])


def test_a_single_process_checks_nothing():
    check_agreement({"anything": "x"})  # no process group: nothing to compare, no error


def test_fingerprints_follow_the_content():
    assert fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1}) != fingerprint({"a": 1, "b": [3]})
    a = [torch.ones(3), torch.zeros(2)]
    assert tensors_fingerprint(a) == tensors_fingerprint([t.clone() for t in a])
    assert tensors_fingerprint(a) != tensors_fingerprint([torch.ones(3), torch.tensor([0.0, 1e-7])])

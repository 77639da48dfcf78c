"""Fast verdicts (issue 8): prompts go to the runtime together, and batching keeps the answers.

The engine tests load a tiny zoo model in this process (no server, a few seconds); they compare
hf_server's batched path with its one-prompt-at-a-time path (``--max-batch 1``).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.checks.accuracy import ask_sets, card_prompts, questions
from harness.config.cards import AccuracySet, load_cards
from harness.runtimes.client import Generation


class CountingClient:
    """Answers every prompt with its own text; remembers each generate call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, top_logprobs: int = 0) -> list[Generation]:
        self.calls.append((list(prompts), max_new_tokens))
        return [Generation(p, f" {p}", (), ()) for p in prompts]


def test_accuracy_asks_one_call_per_answer_length_and_gives_each_set_its_own_answers() -> None:
    sets = (AccuracySet("world", 0.8, 8), AccuracySet("arithmetic", 0.7, 6, shots=2), AccuracySet("general", 0.8, 8))
    asked = [questions(s) for s in sets]
    client = CountingClient()
    answers = ask_sets(client, sets, asked)
    assert [n for _, n in client.calls] == [8, 6]
    assert len(client.calls[0][0]) == len(asked[0]) + len(asked[2])
    for qs, gens in zip(asked, answers):
        assert [g.prompt for g in gens] == [q.prompt for q in qs]


def test_tiny_cards_ask_accuracy_in_a_single_call() -> None:
    for card in load_cards().values():
        if card.embedded:
            client = CountingClient()
            ask_sets(client, card.sets, [questions(s) for s in card.sets])
            assert len(client.calls) == 1, card.name


def test_the_one_prompt_at_a_time_matrix_is_the_default_one_with_max_batch_1() -> None:
    from harness.config.matrixfile import MatrixFile

    matrices = Path(__file__).resolve().parent.parent / "benchmarks" / "matrices"
    matrix = MatrixFile.load(matrices / "one-prompt-at-a-time.yaml")
    assert tuple(matrix.runtime_options["hf"].args) == ("--max-batch", "1")
    axes = (matrix.axes["devices"], matrix.axes["models"], matrix.axes["offload_modes"])
    assert axes == (("cpu",), ("tiny",), ("none", "disk"))


def test_a_finished_row_stops_at_its_first_stop_token() -> None:
    hf_server = pytest.importorskip("harness.runtimes.hf_server", reason="hf_server needs torch")
    stops = hf_server._stop_ids([2, 7])
    assert hf_server._until_stop([5, 2, 0, 0], stops) == [5, 2]
    assert hf_server._until_stop([5, 6, 7, 2], stops) == [5, 6, 7]
    assert hf_server._until_stop([5, 6], stops) == [5, 6]
    assert hf_server._stop_ids(None) == frozenset() and hf_server._stop_ids(2) == frozenset({2})


def _engine(hf_server, checkpoint: str, offload: str, max_batch: int, offload_dir: Path):
    return hf_server.Engine(hf_server.parse_args([
        "--model", checkpoint, "--port", "1", "--offload", offload, "--offload-dir", str(offload_dir),
        "--max-batch", str(max_batch)]))


@pytest.mark.parametrize(("model", "offload"), [("tiny-llama", "none"), ("tiny-qwen2-moe", "disk")])
def test_batched_generation_keeps_tokens_and_logprobs_within_float32_noise(model: str, offload: str,
                                                                           tmp_path: Path) -> None:
    hf_server = pytest.importorskip("harness.runtimes.hf_server", reason="hf_server needs torch")
    pytest.importorskip("transformers")
    import torch

    from harness.boot.cellrun import resolve_checkpoint

    card = load_cards()[model]
    checkpoint = str(resolve_checkpoint(card, sys.executable))
    req = {"text": card_prompts(card), "sampling_params": {"max_new_tokens": max(s.max_new_tokens for s in card.sets)},
           "top_logprobs_num": card.logprob.top_k}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runtime runs (HARNESS_RUNTIME_THREADS defaults to 1)
    try:
        one = _engine(hf_server, checkpoint, offload, 1, tmp_path / "one").generate(req)
        batched = _engine(hf_server, checkpoint, offload, 64, tmp_path / "batched").generate(req)
    finally:
        torch.set_num_threads(threads)
    assert len(one) == len(batched) == len(req["text"])
    for a, b in zip(one, batched):
        assert (a["text"], a["output_ids"]) == (b["text"], b["output_ids"])
        ma, mb = a["meta_info"], b["meta_info"]
        assert (ma["prompt_tokens"], ma["completion_tokens"]) == (mb["prompt_tokens"], mb["completion_tokens"])
        for (la, ta, _), (lb, tb, _) in zip(ma["output_token_logprobs"], mb["output_token_logprobs"]):
            assert ta == tb and abs(la - lb) <= 1e-6  # measured <= 1.2e-7
        for sa, sb in zip(ma["output_top_logprobs"], mb["output_top_logprobs"]):
            assert max(abs(x[0] - y[0]) for x, y in zip(sa, sb)) <= 5e-5  # measured <= 7.2e-6: GEMM shape noise

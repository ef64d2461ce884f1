"""Each weight source's knowledge lives in its one record; an unknown source is one sentence."""

from __future__ import annotations

import pytest

from spf_bench.core.errors import SpfError
from spf_bench.generation import protocol
from spf_bench.generation.protocol import source_record
from spf_bench.zoo import SOURCES


def test_every_zoo_source_has_one_record_and_the_views_read_it():
    assert set(protocol.WEIGHT_SOURCES) == set(SOURCES)
    for name, record in protocol.WEIGHT_SOURCES.items():
        assert protocol.settings_for(name) == record.settings
        assert protocol.DEFAULT_TRIPLES[name] == record.n_triples
        assert protocol.eval_options_for(name, batch_size=3) == {**record.eval_options, "batch_size": 3}
    # a given value wins over the record's
    assert protocol.settings_for("tiny", steps=3).steps == 3
    assert protocol.eval_options_for("tiny", sam_points_per_side=16)["sam_points_per_side"] == 16


def test_quick_training_defaults_come_from_the_records():
    from spf_bench.methods.training import QUICK_DEFAULTS, QuickTraining

    trains = {name for name, r in protocol.WEIGHT_SOURCES.items() if r.quick_training is not None}
    assert set(QUICK_DEFAULTS) == trains == {"tiny", "synth"}
    assert QuickTraining().resolved("synth").steps == source_record("synth").quick_training["steps"]


def test_untrained_sources_are_the_tables_untrained_ones():
    from spf_bench.results.tables import UNTRAINED_WEIGHTS

    assert set(UNTRAINED_WEIGHTS) == {"tiny", "random"}


@pytest.mark.parametrize("call", [
    lambda: protocol.settings_for("imagenet"),
    lambda: protocol.eval_options_for("imagenet"),
    lambda: __import__("spf_bench.triples.compose", fromlist=["x"]).compose_for("imagenet", 2),
    lambda: __import__("spf_bench.methods.training", fromlist=["x"]).QuickTraining().resolved("imagenet"),
])
def test_an_unknown_source_is_one_sentence_naming_it(call):
    with pytest.raises(SpfError) as info:
        call()
    message = str(info.value)
    assert "'imagenet'" in message and "\n" not in message


def test_unknown_source_never_falls_back_to_pretrained_settings():
    # the old behaviour: any name got the 512 px / 50-step settings silently
    with pytest.raises(SpfError, match="Unknown weight source 'pretrained2'"):
        protocol.settings_for("pretrained2")

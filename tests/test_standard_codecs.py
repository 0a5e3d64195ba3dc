"""The codec facts planning reads (standard/codecs.py) are the encoders' own (transforms/codecs.py)."""

from __future__ import annotations

from dicommedia.standard.codecs import CODEC_FACTS
from dicommedia.transforms.codecs import CODECS


def test_codec_facts_match_the_encoders():
    assert set(CODEC_FACTS) == set(CODECS)
    for name, codec in CODECS.items():
        facts = CODEC_FACTS[name]
        assert (facts.transfer_syntax, facts.lossy) == (str(codec.transfer_syntax), codec.lossy), name

"""`sluice transform test`: a transformation tried on sample events, for a terminal."""

import argparse

import msgspec

from engine import codec
from engine.errors import SluiceError
from engine.transformations.trial import trial


async def trial_command(args: argparse.Namespace) -> int:
    """Print the result as JSON; exit status 1 when the code failed."""
    try:
        sample = codec.decode(args.event.read_bytes())
    except msgspec.DecodeError as exc:
        raise SluiceError(f"{args.event} is not valid JSON: {exc}") from None
    events = sample if isinstance(sample, list) else [sample]
    if not all(isinstance(e, dict) for e in events):
        raise SluiceError(f"{args.event} must hold an event object or a list of them")
    result = await trial(args.code.read_text(), events)
    print(msgspec.json.format(msgspec.json.encode(result)).decode())
    return 1 if result.error else 0

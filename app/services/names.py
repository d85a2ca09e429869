"""Readable random run names ("adjective-animal"), as Orion gives unnamed runs."""
import random

ADJECTIVES = (
    "agile", "amber", "ancient", "arctic", "bold", "brave", "bright", "calm", "clever",
    "cosmic", "crimson", "curious", "daring", "dazzling", "eager", "electric", "emerald",
    "fancy", "fearless", "festive", "fiery", "gentle", "glowing", "golden", "graceful",
    "happy", "hidden", "humble", "icy", "jolly", "keen", "lively", "loyal", "lucky", "mellow",
    "mighty", "misty", "noble", "nimble", "olive", "patient", "plucky", "proud", "quick",
    "quiet", "radiant", "rapid", "ruby", "rustic", "sandy", "scarlet", "serene", "silent",
    "silver", "sleek", "smart", "snowy", "sparkling", "spry", "steady", "stellar", "sunny",
    "swift", "tidy", "tranquil", "vivid", "wandering", "warm", "wise", "witty", "zealous",
)
ANIMALS = (
    "albatross", "alpaca", "antelope", "badger", "beaver", "bison", "bobcat", "buffalo",
    "camel", "caribou", "cheetah", "cobra", "condor", "coyote", "crane", "dingo", "dolphin",
    "eagle", "echidna", "elk", "falcon", "ferret", "finch", "fox", "gazelle", "gecko",
    "gibbon", "heron", "hippo", "ibex", "iguana", "jackal", "jaguar", "kestrel", "koala",
    "lemur", "leopard", "lynx", "macaw", "manatee", "marmot", "meerkat", "mongoose", "moose",
    "narwhal", "newt", "ocelot", "orca", "osprey", "otter", "owl", "panda", "panther",
    "pelican", "penguin", "puffin", "quail", "raccoon", "raven", "salamander", "seal",
    "sparrow", "stork", "tapir", "tiger", "toucan", "turtle", "vulture", "walrus", "wombat",
    "yak", "zebra",
)


def generate_run_name() -> str:
    """A random two-word slug such as ``"brave-otter"``."""
    return f"{random.choice(ADJECTIVES)}-{random.choice(ANIMALS)}"

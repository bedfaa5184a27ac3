"""Django's serialization formats, each reading a dump inside `loading_dump()` (SERIALIZATION_MODULES).

`dumpdata` writes an encrypted field as a Fernet token; `loaddata` hands the token to the field
inside `loading_dump()`, which is the only place the field opens a token it is given.
"""

from collections.abc import Iterator
from typing import Any

from config.encryption import loading_dump


def dump_reader(deserializer: type) -> type:
    """`deserializer`, every object of which is built inside `loading_dump()`."""

    class Deserializer(deserializer):
        # The python-based formats iterate with a generator, XML with __next__: both are covered.
        def __iter__(self) -> Iterator[Any]:
            objects = super().__iter__()
            while True:
                with loading_dump():
                    try:
                        obj = next(objects)
                    except StopIteration:
                        return
                yield obj

        def __next__(self) -> Any:
            with loading_dump():
                return super().__next__()

    Deserializer.__qualname__ = Deserializer.__name__ = deserializer.__name__
    return Deserializer

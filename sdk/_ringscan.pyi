def scan(
    region: bytes,
    o: int,
    pos: int,
    head: int,
    checked: int,
    view_above: int,
    starts: list[int],
    payloads: list[bytes | memoryview],
    /,
) -> int: ...
def crc32(data: bytes | memoryview, /) -> int: ...

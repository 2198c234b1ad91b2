"""The host side of the Linux boot suite's disk contract; init/disk_pattern.h
is the guest's copy of the same formulas (keep them in step)."""

REGION = 65536
HOST_MAGIC = b"vmm-linux-disk-"
HOST_HEADER = 16
GUEST_HEADER = 32
IMAGE_BYTES = 1 << 20


def host_byte(letter, offset):
    return (offset * 7 + ord(letter) * 29 + (offset >> 8)) & 0xFF


def guest_byte(letter, offset):
    return (offset * 13 + ord(letter) * 17 + 5) & 0xFF


def make_image(path, letter):
    """A 1 MiB image: the host's pattern in the first 64 KiB, zeros after."""
    data = bytearray(IMAGE_BYTES)
    data[:HOST_HEADER] = HOST_MAGIC + letter.encode()
    for i in range(HOST_HEADER, REGION):
        data[i] = host_byte(letter, i)
    with open(path, "wb") as f:
        f.write(data)


def check_image(path, letter, transport):
    """Problems with what init wrote (an empty list when all is well)."""
    with open(path, "rb") as f:
        data = f.read()
    problems = []
    expected = f"linux-wrote-{letter}-over-{transport}".encode()
    header = data[REGION:REGION + GUEST_HEADER].rstrip(b"\0")
    if header != expected:
        problems.append(f"{path}: guest header {header!r}, expected {expected!r}")
    for i in range(REGION + GUEST_HEADER, 2 * REGION):
        if data[i] != guest_byte(letter, i):
            problems.append(f"{path}: byte {i} is {data[i]}, expected "
                            f"{guest_byte(letter, i)}")
            break
    if data[:HOST_HEADER] != HOST_MAGIC + letter.encode():
        problems.append(f"{path}: the host's header was overwritten")
    if any(data[2 * REGION:]):
        problems.append(f"{path}: bytes beyond 128 KiB changed")
    return problems

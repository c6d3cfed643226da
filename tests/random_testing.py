"""An independent NumPy Philox4x32-10 and the stream layout of convkit.random, for the random and dropout tests:
the words a call with a generator at (seed, counter) draws, and the values convkit should make of them."""
import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)
MULTIPLIERS = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
WEYL = (0x9E3779B9, 0xBB67AE85)

# Random123's tests/kat_vectors, the "philox4x32 10" lines: counter (4 words), key (2 words) -> block.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def philox_reference(counters, key):
    """Philox4x32-10 of each row of counters (n, 4) under key (2 words), vectorised over rows: (n, 4) uint32."""
    c = [np.asarray(counters, dtype=np.uint64)[:, i] for i in range(4)]
    k0, k1 = int(key[0]), int(key[1])
    for r in range(10):
        if r:
            k0, k1 = (k0 + WEYL[0]) & 0xFFFFFFFF, (k1 + WEYL[1]) & 0xFFFFFFFF
        p0, p1 = MULTIPLIERS[0] * c[0], MULTIPLIERS[1] * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & MASK32,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & MASK32]
    return np.stack(c, axis=1).astype(np.uint32)


def stream_words(seed: int, first_block: int, count: int) -> np.ndarray:
    """The first `count` 32-bit words of the stream (seed, first_block): block b has the counter
    (low 32 bits of first_block + b, high 32 bits, 0, 0) under the key (low 32 bits of seed, high 32 bits)."""
    blocks = (first_block + np.arange(-(-count // 4), dtype=object)) % 2**64
    counters = np.array([[b & 0xFFFFFFFF, b >> 32, 0, 0] for b in blocks], dtype=np.uint64).reshape(-1, 4)
    return philox_reference(counters, (seed & 0xFFFFFFFF, seed >> 32)).reshape(-1)[:count]


def words_as_uint64(words: np.ndarray) -> np.ndarray:
    """Pairs of words (high, low) as 64-bit integers."""
    pairs = words.astype(np.uint64).reshape(-1, 2)
    return (pairs[:, 0] << np.uint64(32)) | pairs[:, 1]


def uniform_reference(seed: int, first_block: int, n: int, dtype) -> np.ndarray:
    """float32: top 24 bits of a word * 2^-24; float64: top 53 bits of two words * 2^-53."""
    if np.dtype(dtype) == np.float32:
        return ((stream_words(seed, first_block, n) >> np.uint32(8)).astype(np.float64) * 2.0**-24).astype(np.float32)
    return (words_as_uint64(stream_words(seed, first_block, 2 * n)) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def normal_reference(seed: int, first_block: int, n: int, dtype) -> np.ndarray:
    """Box-Muller in float64 on value pairs: radius from the first value's open-interval uniform, angle from
    the second's [0, 1) uniform."""
    even = n + n % 2
    if np.dtype(dtype) == np.float32:
        words = stream_words(seed, first_block, even).astype(np.float64)
        u = (words[0::2] + 0.5) * 2.0**-32
        v = (words[1::2].astype(np.uint32) >> np.uint32(8)).astype(np.float64) * 2.0**-24
    else:
        keys = (words_as_uint64(stream_words(seed, first_block, 2 * even)) >> np.uint64(11)).astype(np.float64)
        u, v = (keys[0::2] + 0.5) * 2.0**-53, keys[1::2] * 2.0**-53
    radius, angle = np.sqrt(-2.0 * np.log(u)), 2.0 * np.pi * v
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).reshape(-1)[:n].astype(dtype)


def bernoulli_reference(seed: int, first_block: int, n: int, p: float) -> np.ndarray:
    return stream_words(seed, first_block, n).astype(np.uint64) < np.uint64(int(p * 2.0**32))

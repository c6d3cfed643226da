# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Batch augmentation kernels on channels-last images (N, H, W, C), uint8 or float32.

Every random choice is made by the caller (convkit.data.augmentations) and arrives here as per-image
parameter arrays, so a kernel is a pure function of its inputs: the result does not depend on the thread
count. Threads split the batch by image (`prange` over N). Callers pass C-contiguous arrays of matching
dtypes and checked shapes; these kernels do not check again (bounds checks are off).

Values computed in floating point are stored back as: float32 -> the value; uint8 -> rounded to the
nearest integer and clamped to [0, 255].
"""
from cython.parallel cimport prange
from libc.math cimport floor, sqrt

ctypedef fused pixel_t:
    unsigned char
    float

# Border handling of the sampling kernels and padding of crop (exported to Python as module constants).
cpdef enum Border:
    BORDER_CONSTANT = 0   # outside the image reads the fill value (crop: zero)
    BORDER_REPLICATE = 1  # outside the image reads the nearest edge pixel
    BORDER_REFLECT = 2    # outside the image reads its mirror image, edge not repeated (crop only)


cdef inline void put(pixel_t* dst, double v) noexcept nogil:
    """*dst = v: float32 as is, uint8 rounded to nearest and clamped to [0, 255]."""
    if pixel_t is float:
        dst[0] = <float>v
    elif v <= 0.0:
        dst[0] = 0
    elif v >= 255.0:
        dst[0] = 255
    else:
        dst[0] = <unsigned char>(v + 0.5)


cdef inline Py_ssize_t reflect_index(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    # Valid for -n < i < 2n - 1 (padding smaller than the image, checked by the caller).
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


cdef inline Py_ssize_t clamp_index(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    if i < 0:
        return 0
    if i >= n:
        return n - 1
    return i


def flip(pixel_t[:, :, :, ::1] src, const unsigned char[::1] horizontal, const unsigned char[::1] vertical,
         pixel_t[:, :, :, ::1] out, int threads):
    """out[n] = src[n] mirrored left-right where horizontal[n], upside down where vertical[n]."""
    cdef Py_ssize_t N = src.shape[0], H = src.shape[1], W = src.shape[2], C = src.shape[3]
    cdef Py_ssize_t n, i, j, c, si, sj
    for n in prange(N, nogil=True, num_threads=threads, schedule="static"):
        for i in range(H):
            si = H - 1 - i if vertical[n] else i
            for j in range(W):
                sj = W - 1 - j if horizontal[n] else j
                for c in range(C):
                    out[n, i, j, c] = src[n, si, sj, c]


def crop(pixel_t[:, :, :, ::1] src, const long long[::1] top, const long long[::1] left, int padding,
         pixel_t[:, :, :, ::1] out, int threads):
    """out[n, i, j] = src[n, top[n] + i, left[n] + j]; rows/columns outside src are zero (BORDER_CONSTANT)
    or mirrored (BORDER_REFLECT). The output size is out's."""
    cdef Py_ssize_t N = src.shape[0], H = src.shape[1], W = src.shape[2], C = src.shape[3]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    cdef Py_ssize_t n, i, j, c, si, sj
    cdef bint inside
    for n in prange(N, nogil=True, num_threads=threads, schedule="static"):
        for i in range(OH):
            si = top[n] + i
            for j in range(OW):
                sj = left[n] + j
                inside = 0 <= si < H and 0 <= sj < W
                for c in range(C):
                    if inside:
                        out[n, i, j, c] = src[n, si, sj, c]
                    elif padding == BORDER_REFLECT:
                        out[n, i, j, c] = src[n, reflect_index(si, H), reflect_index(sj, W), c]
                    else:
                        out[n, i, j, c] = 0


cdef inline double tap(const pixel_t* img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t y,
                       Py_ssize_t x, Py_ssize_t c, const double* fill, int border) noexcept nogil:
    if 0 <= y < H and 0 <= x < W:
        return img[(y * W + x) * C + c]
    if border == BORDER_REPLICATE:
        return img[(clamp_index(y, H) * W + clamp_index(x, W)) * C + c]
    return fill[c]


cdef inline void sample_bilinear(const pixel_t* img, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                                 double sy, double sx, const double* fill, int border,
                                 pixel_t* out_pixel) noexcept nogil:
    """out_pixel[:C] = img (H, W, C) sampled at (sy, sx), pixel centres at integers; the taps outside the
    image read through `border`."""
    # Far outside, every tap reads the same (fill or edge): clamping keeps the integer casts defined
    # (written so that a NaN from an overflowing map lands on -2 too).
    sy = min(sy if sy >= -2.0 else -2.0, H + 1.0)
    sx = min(sx if sx >= -2.0 else -2.0, W + 1.0)
    cdef double fy = floor(sy), fx = floor(sx)
    cdef double wy = sy - fy, wx = sx - fx, v
    cdef Py_ssize_t y0 = <Py_ssize_t>fy, x0 = <Py_ssize_t>fx, c
    for c in range(C):
        v = ((1.0 - wy) * ((1.0 - wx) * tap(img, H, W, C, y0, x0, c, fill, border)
                           + wx * tap(img, H, W, C, y0, x0 + 1, c, fill, border))
             + wy * ((1.0 - wx) * tap(img, H, W, C, y0 + 1, x0, c, fill, border)
                     + wx * tap(img, H, W, C, y0 + 1, x0 + 1, c, fill, border)))
        put(&out_pixel[c], v)


def warp_affine(pixel_t[:, :, :, ::1] src, const double[:, ::1] coeffs, const double[::1] fill, int border,
                pixel_t[:, :, :, ::1] out, int threads):
    """out[n, i, j] = src[n] sampled bilinearly at (sy, sx) = (a*i + b*j + c, d*i + e*j + f), with
    (a, b, c, d, e, f) = coeffs[n]: the inverse map of a rotation, a resized crop or any affine warp."""
    cdef Py_ssize_t N = src.shape[0], H = src.shape[1], W = src.shape[2], C = src.shape[3]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    cdef Py_ssize_t n, i, j
    for n in prange(N, nogil=True, num_threads=threads, schedule="static"):
        for i in range(OH):
            for j in range(OW):
                sample_bilinear(&src[n, 0, 0, 0], H, W, C,
                                coeffs[n, 0] * i + coeffs[n, 1] * j + coeffs[n, 2],
                                coeffs[n, 3] * i + coeffs[n, 4] * j + coeffs[n, 5],
                                &fill[0], border, &out[n, i, j, 0])


def warp_radial(pixel_t[:, :, :, ::1] src, const double[::1] k1, const double[::1] fill, int border,
                pixel_t[:, :, :, ::1] out, int threads):
    """Radial lens distortion: out[n] at offset d from the image centre samples src[n] at the centre plus
    d * (1 + k1[n] * r^2), r = |d| / (half diagonal) (1 at the corners). k1 > 0 gives barrel distortion
    (the border is squeezed in), k1 < 0 pincushion."""
    cdef Py_ssize_t N = src.shape[0], H = src.shape[1], W = src.shape[2], C = src.shape[3]
    cdef double cy = (H - 1) * 0.5, cx = (W - 1) * 0.5
    cdef double inv_r2 = 1.0 / (cy * cy + cx * cx) if cy * cy + cx * cx > 0 else 0.0
    cdef double dy, dx, scale
    cdef Py_ssize_t n, i, j
    for n in prange(N, nogil=True, num_threads=threads, schedule="static"):
        for i in range(H):
            dy = i - cy
            for j in range(W):
                dx = j - cx
                scale = 1.0 + k1[n] * (dy * dy + dx * dx) * inv_r2
                sample_bilinear(&src[n, 0, 0, 0], H, W, C, cy + dy * scale, cx + dx * scale, &fill[0], border,
                                &out[n, i, j, 0])


cdef inline double clip(double v, double top) noexcept nogil:
    return 0.0 if v < 0.0 else (top if v > top else v)


def color_jitter(pixel_t[:, :, :, ::1] src, const double[::1] brightness, const double[::1] contrast,
                 const double[::1] saturation, pixel_t[:, :, :, ::1] out, int threads):
    """torchvision's adjust_brightness, then adjust_contrast, then adjust_saturation, each clipped to the
    value range ([0, 255] for uint8, [0, 1] for float32), in double with one rounding at the end:
      brightness  v = b * v
      contrast    v = c * v + (1 - c) * mean grey of the image (after brightness)
      saturation  v = s * v + (1 - s) * grey of the pixel (after contrast)
    C is 1 (saturation is then the identity) or 3 (RGB). Factor 1 leaves a step out."""
    cdef Py_ssize_t N = src.shape[0], H = src.shape[1], W = src.shape[2], C = src.shape[3]
    cdef double top = 1.0 if pixel_t is float else 255.0
    cdef double mean, v0, v1, v2, g, b, ct, s
    cdef const pixel_t* px
    cdef Py_ssize_t n, i, P = H * W
    for n in prange(N, nogil=True, num_threads=threads, schedule="static"):
        b = brightness[n]
        ct = contrast[n]
        s = saturation[n]
        mean = 0.0
        for i in range(P):
            px = &src[n, 0, 0, 0] + i * C
            if C == 1:
                mean = mean + clip(b * px[0], top)
            else:
                mean = mean + (0.299 * clip(b * px[0], top) + 0.587 * clip(b * px[1], top)
                               + 0.114 * clip(b * px[2], top))
        mean = mean / P if P > 0 else 0.0
        for i in range(P):
            px = &src[n, 0, 0, 0] + i * C
            v0 = clip(ct * clip(b * px[0], top) + (1.0 - ct) * mean, top)
            if C == 1:
                put(&out[n, 0, 0, 0] + i * C, v0)
            else:
                v1 = clip(ct * clip(b * px[1], top) + (1.0 - ct) * mean, top)
                v2 = clip(ct * clip(b * px[2], top) + (1.0 - ct) * mean, top)
                g = 0.299 * v0 + 0.587 * v1 + 0.114 * v2
                put(&out[n, 0, 0, 0] + i * C, clip(s * v0 + (1.0 - s) * g, top))
                put(&out[n, 0, 0, 0] + i * C + 1, clip(s * v1 + (1.0 - s) * g, top))
                put(&out[n, 0, 0, 0] + i * C + 2, clip(s * v2 + (1.0 - s) * g, top))

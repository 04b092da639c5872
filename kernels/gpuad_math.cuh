// Device helpers for the builtins of gpuad's derivative table that CUDA lacks or spells
// differently; every generated kernel's preamble starts with this file.
template <typename T> __device__ __forceinline__ T ad_sign(T x) {
    return (x > T(0)) ? T(1) : ((x < T(0)) ? T(-1) : x);  // keeps 0 and NaN, as np.sign
}
template <typename T> __device__ __forceinline__ T ad_maximum(T x, T y) {
    return (x >= y || x != x) ? x : y;  // NaN in either argument propagates, as np.maximum
}
template <typename T> __device__ __forceinline__ T ad_minimum(T x, T y) {
    return (x <= y || x != x) ? x : y;
}
template <typename T> __device__ __forceinline__ T ad_floor_divide(T x, T y) {
    return floor(x / y);
}
template <typename T> __device__ __forceinline__ T ad_remainder(T x, T y) {
    T r = fmod(x, y);  // Python's sign convention: the result takes the sign of y
    return (r != T(0) && ((r < T(0)) != (y < T(0)))) ? r + y : r;
}
// float16, stored as its bits: converted to float for the arithmetic, rounded to nearest back
__device__ __forceinline__ float ad_load_half(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short ad_store_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

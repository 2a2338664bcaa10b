// Shared helpers, prepended to the shaders that need them (WGSL has no include).

// Reflect-101 index (gfedcb|abcdefgh|gfedcba), OpenCV's default border.
fn reflect101(i: i32, n: i32) -> i32 {
    if (n == 1) { return 0; }
    var j = i;
    if (j < 0) { j = -j; }
    if (j >= n) { j = 2 * n - 2 - j; }
    return clamp(j, 0, n - 1);
}

// Separable convolution with a symmetric kernel, reflect-101 borders; `axis` 0 = rows
// (horizontal), 1 = columns (vertical). Matches fluoro_enhance::gaussian::blur.

struct Params {
    width: u32,
    height: u32,
    radius: u32,
    axis: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> kernel: array<f32>;

// reflect101() comes from common.wgsl

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.width || gid.y >= p.height) { return; }
    let w = i32(p.width);
    let h = i32(p.height);
    let x = i32(gid.x);
    let y = i32(gid.y);
    let r = i32(p.radius);
    var acc = kernel[p.radius] * src[gid.y * p.width + gid.x];
    for (var i = 1; i <= r; i = i + 1) {
        var a: f32;
        var b: f32;
        if (p.axis == 0u) {
            a = src[u32(y * w + reflect101(x - i, w))];
            b = src[u32(y * w + reflect101(x + i, w))];
        } else {
            a = src[u32(reflect101(y - i, h) * w + x)];
            b = src[u32(reflect101(y + i, h) * w + x)];
        }
        acc = acc + kernel[u32(r + i)] * (a + b);
    }
    dst[gid.y * p.width + gid.x] = acc;
}

// Bilateral filter, round window of radius `radius`, reflect-101 borders.
// Matches fluoro_enhance::bilateral (same spatial weights, exp range weight, same order of
// summation).

struct Params {
    width: u32,
    height: u32,
    radius: u32,
    masked: u32,    // 1: pixels where mask is 0 keep their value
    inv_2ss: f32,   // 1 / (2 sigma_space^2)
    range_c: f32,   // 1 / (2 sigma_range^2)
    _pad2: f32,
    _pad3: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// the field mask (1 inside, 0 outside); read only when `masked` is 1
@group(0) @binding(3) var<storage, read> mask: array<f32>;

// reflect101() comes from common.wgsl

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.width || gid.y >= p.height) { return; }
    let w = i32(p.width);
    let h = i32(p.height);
    let x = i32(gid.x);
    let y = i32(gid.y);
    let r = i32(p.radius);
    let c = src[gid.y * p.width + gid.x];
    // outside the field a pixel keeps its value (fluoro_enhance::bilateral::bilateral_in_field)
    if (p.masked == 1u && mask[gid.y * p.width + gid.x] == 0.0) {
        dst[gid.y * p.width + gid.x] = c;
        return;
    }
    // Summed as the CPU sums it: the centre (weight 1), then per half-window offset o (rows
    // below, or right on the row) the pair with p + o and the pair with p - o.
    var num = c;
    var den = 1.0;
    for (var dy = 0; dy <= r; dy = dy + 1) {
        for (var dx = -r; dx <= r; dx = dx + 1) {
            if (dy == 0 && dx <= 0) { continue; }
            let d2 = f32(dx * dx + dy * dy);
            if (d2 > f32(r * r) + 0.001) { continue; }
            let ws = exp(-d2 * p.inv_2ss);
            let vf = src[u32(reflect101(y + dy, h) * w + reflect101(x + dx, w))];
            let vb = src[u32(reflect101(y - dy, h) * w + reflect101(x - dx, w))];
            let df = vf - c;
            let db = vb - c;
            let wf = ws * exp(-df * df * p.range_c);
            let wb = ws * exp(-db * db * p.range_c);
            num = num + (wf * vf + wb * vb);
            den = den + (wf + wb);
        }
    }
    dst[gid.y * p.width + gid.x] = num / den;
}

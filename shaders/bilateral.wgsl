// Bilateral filter, round window of radius `radius`, reflect-101 borders.
// Matches fluoro_enhance::bilateral (same spatial weights, exp range weight).

struct Params {
    width: u32,
    height: u32,
    radius: u32,
    _pad: u32,
    inv_2ss: f32,   // 1 / (2 sigma_space^2)
    range_c: f32,   // 1 / (2 sigma_range^2)
    _pad2: f32,
    _pad3: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

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
    var num = 0.0;
    var den = 0.0;
    for (var dy = -r; dy <= r; dy = dy + 1) {
        let yy = reflect101(y + dy, h);
        for (var dx = -r; dx <= r; dx = dx + 1) {
            let d2 = f32(dx * dx + dy * dy);
            if (d2 > f32(r * r) + 0.001) { continue; }
            let v = src[u32(yy * w + reflect101(x + dx, w))];
            let diff = v - c;
            let wgt = exp(-d2 * p.inv_2ss) * exp(-diff * diff * p.range_c);
            num = num + wgt * v;
            den = den + wgt;
        }
    }
    dst[gid.y * p.width + gid.x] = num / den;
}

// Two-band detail enhancement (fluoro_enhance::detail::enhance_detail_in_field: the fine
// blur taken as the source outside the field, as the CPU's blur_in_field leaves it):
//   `down`:    half-resolution 2x2 mean of the source
//   `combine`: out = x + gf (x - fine) + gc (fine - coarse), coarse bilinearly upsampled
//              (3/4 - 1/4 weights, centred samples)

struct Params {
    width: u32,
    height: u32,
    hw: u32,
    hh: u32,
    gf: f32,
    gc: f32,
    _p0: f32,
    _p1: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> fine: array<f32>;
@group(0) @binding(3) var<storage, read_write> half_img: array<f32>;
@group(0) @binding(4) var<storage, read> coarse: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;

// the fine blur inside the field, the source outside it
fn fine_at(k: u32) -> f32 {
    return select(fine[k], x_in[k], mask[k] == 0.0);
}

@compute @workgroup_size(16, 16, 1)
fn down(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.hw || gid.y >= p.hh) { return; }
    let y0 = min(2u * gid.y, p.height - 1u);
    let y1 = min(2u * gid.y + 1u, p.height - 1u);
    let x0 = min(2u * gid.x, p.width - 1u);
    let x1 = min(2u * gid.x + 1u, p.width - 1u);
    half_img[gid.y * p.hw + gid.x] = 0.25 * (x_in[y0 * p.width + x0] + x_in[y0 * p.width + x1] + x_in[y1 * p.width + x0] + x_in[y1 * p.width + x1]);
}

fn coarse_at(i: u32, y0: u32, y1: u32, ay: f32) -> f32 {
    let a = coarse[y0 * p.hw + i];
    let b = coarse[y1 * p.hw + i];
    return a + ay * (b - a);
}

@compute @workgroup_size(16, 16, 1)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let fy = clamp((f32(y) - 0.5) / 2.0, 0.0, f32(p.hh - 1u));
    let y0 = u32(fy);
    let y1 = min(y0 + 1u, p.hh - 1u);
    let ay = fy - f32(y0);
    let i = x / 2u;
    let c = coarse_at(i, y0, y1, ay);
    var nb: f32;
    if (x % 2u == 0u) {
        nb = coarse_at(select(i - 1u, 0u, i == 0u), y0, y1, ay);
    } else {
        nb = coarse_at(min(i + 1u, p.hw - 1u), y0, y1, ay);
    }
    let cc = 0.75 * c + 0.25 * nb;
    let k = y * p.width + x;
    let v = x_in[k];
    let f = fine_at(k);
    dst[k] = v + p.gf * (v - f) + p.gc * (f - cc);
}

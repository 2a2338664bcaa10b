// Two-band detail enhancement (fluoro_enhance::detail::enhance_detail_in_field: the fine
// blur taken as the source outside the field, as the CPU's blur_in_field leaves it):
//   `down`:    quarter-resolution 4x4 mean of the source (the 2x2 means of its 2x2 means,
//              an odd last row or column paired with itself at each step, as on the CPU)
//   `combine`: out = x + gf (x - fine) + gc (fine - coarse), coarse bilinearly upsampled
//              4x (weights 5/8 7/8 7/8 5/8 on the nearest sample, centred samples)

struct Params {
    width: u32,
    height: u32,
    hw: u32,
    hh: u32,
    gf: f32,
    gc: f32,
    qw: u32,
    qh: u32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> fine: array<f32>;
@group(0) @binding(3) var<storage, read_write> quarter_img: array<f32>;
@group(0) @binding(4) var<storage, read> coarse: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;

// the fine blur inside the field, the source outside it
fn fine_at(k: u32) -> f32 {
    return select(fine[k], x_in[k], mask[k] == 0.0);
}

// the source's 2x2 mean at half-resolution column hx, row hy
fn half_at(hx: u32, hy: u32) -> f32 {
    let y0 = min(2u * hy, p.height - 1u);
    let y1 = min(2u * hy + 1u, p.height - 1u);
    let x0 = min(2u * hx, p.width - 1u);
    let x1 = min(2u * hx + 1u, p.width - 1u);
    return 0.25 * (x_in[y0 * p.width + x0] + x_in[y0 * p.width + x1] + x_in[y1 * p.width + x0] + x_in[y1 * p.width + x1]);
}

@compute @workgroup_size(16, 16, 1)
fn down(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.qw || gid.y >= p.qh) { return; }
    let y0 = min(2u * gid.y, p.hh - 1u);
    let y1 = min(2u * gid.y + 1u, p.hh - 1u);
    let x0 = min(2u * gid.x, p.hw - 1u);
    let x1 = min(2u * gid.x + 1u, p.hw - 1u);
    quarter_img[gid.y * p.qw + gid.x] = 0.25 * (half_at(x0, y0) + half_at(x1, y0) + half_at(x0, y1) + half_at(x1, y1));
}

fn coarse_at(i: u32, y0: u32, y1: u32, ay: f32) -> f32 {
    let a = coarse[y0 * p.qw + i];
    let b = coarse[y1 * p.qw + i];
    return a + ay * (b - a);
}

@compute @workgroup_size(16, 16, 1)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let fy = clamp((f32(y) - 1.5) / 4.0, 0.0, f32(p.qh - 1u));
    let y0 = u32(fy);
    let y1 = min(y0 + 1u, p.qh - 1u);
    let ay = fy - f32(y0);
    let i = x / 4u;
    let phase = x % 4u;
    let c = coarse_at(i, y0, y1, ay);
    var nb: f32;
    if (phase < 2u) {
        nb = coarse_at(select(i - 1u, 0u, i == 0u), y0, y1, ay);
    } else {
        nb = coarse_at(min(i + 1u, p.qw - 1u), y0, y1, ay);
    }
    // the neighbour's weight: 3/8 at the quad's ends, 1/8 in its middle
    let wn = select(0.125, 0.375, phase == 0u || phase == 3u);
    let cc = (1.0 - wn) * c + wn * nb;
    let k = y * p.width + x;
    let v = x_in[k];
    let f = fine_at(k);
    dst[k] = v + p.gf * (v - f) + p.gc * (f - cc);
}

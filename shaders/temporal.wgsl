// Motion-adaptive recursive filter (fluoro_enhance::temporal::RecursiveFilter::filter).
//   `samples`: the 3x3 mean of cur - prev at grid points (the gate's statistics, read back)
//   `hsum`:    horizontal 3-sums of cur - prev (edges clamped)
//   `blend`:   out = cur + w (prev - cur), w = a * max(0, 1 - |3x3 sum| * inv_t)

struct Params {
    width: u32,
    height: u32,
    step: u32,       // sample grid step
    sw: u32,         // samples per row
    a: f32,          // recursion
    inv_t: f32,      // 1 / (k * gate_sigma * 9)
    _p0: f32,
    _p1: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cur: array<f32>;
@group(0) @binding(2) var<storage, read> prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> hs: array<f32>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read_write> samples: array<f32>;

fn d(x: u32, y: u32) -> f32 {
    let i = y * p.width + x;
    return cur[i] - prev[i];
}

@compute @workgroup_size(16, 16, 1)
fn sample_gate(@builtin(global_invocation_id) gid: vec3<u32>) {
    // sample (gid.x, gid.y) sits at pixel (2 + gid.x * step, 2 + gid.y * step)
    let x = 2u + gid.x * p.step;
    let y = 2u + gid.y * p.step;
    if (gid.x >= p.sw || x + 2u >= p.width || y + 2u >= p.height) { return; }
    let o = gid.y * p.sw + gid.x;
    let inside = mask[y * p.width + x - 2u] != 0.0 && mask[y * p.width + x + 2u] != 0.0 &&
                 mask[(y - 2u) * p.width + x] != 0.0 && mask[(y + 2u) * p.width + x] != 0.0;
    if (!inside) {
        samples[o] = -1.0;
        return;
    }
    var s = 0.0;
    for (var yy = y - 1u; yy <= y + 1u; yy = yy + 1u) {
        for (var xx = x - 1u; xx <= x + 1u; xx = xx + 1u) {
            s = s + d(xx, yy);
        }
    }
    samples[o] = abs(s / 9.0);
}

@compute @workgroup_size(16, 16, 1)
fn hsum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let xm = select(x - 1u, x, x == 0u);
    let xp = select(x + 1u, x, x + 1u >= p.width);
    hs[y * p.width + x] = d(xm, y) + d(x, y) + d(xp, y);
}

@compute @workgroup_size(16, 16, 1)
fn blend(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let ym = select(y - 1u, y, y == 0u);
    let yp = select(y + 1u, y, y + 1u >= p.height);
    let s = hs[ym * p.width + x] + hs[y * p.width + x] + hs[yp * p.width + x];
    let m = abs(s) * p.inv_t;
    let wgt = p.a * max(1.0 - m, 0.0);
    let i = y * p.width + x;
    outp[i] = cur[i] + wgt * (prev[i] - cur[i]);
}

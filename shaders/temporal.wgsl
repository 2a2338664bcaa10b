// Motion-adaptive recursive filter (fluoro_enhance::temporal::RecursiveFilter::filter).
//   `sample_gate`: |3x3 mean of cur - prev| at grid points (-1 outside the field), from
//              `hs`; run after `blend`, so the gate it measures is the next frame's (the
//              first frame after a reset runs it before `blend` too: the CPU path's order)
//   `gate_select`: one workgroup: the samples' 25th percentile (two histogram levels and the
//              smallest value in the selected fine bin, within max/2^20 of the exact
//              order statistic) -> gate sigma = p25 / 0.3186 -> inv_t into `gate[0]`; fewer
//              than 16 samples: sigma 1 (the frame stays on the GPU: nothing is read back)
//   `hsum`:    horizontal 3-sums of cur - prev (edges clamped)
//   `blend`:   out = cur + w (prev - cur), w = a * max(0, 1 - |3x3 sum| * inv_t)

struct Params {
    width: u32,
    height: u32,
    step: u32,       // sample grid step
    sw: u32,         // samples per row
    a: f32,          // recursion
    motion_k: f32,   // the gate is motion_k * gate_sigma
    n: u32,          // samples in the grid
    _p1: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cur: array<f32>;
@group(0) @binding(2) var<storage, read> prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> hs: array<f32>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read_write> samples: array<f32>;
@group(0) @binding(7) var<storage, read_write> gate: array<f32>;

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
    // the same sum `blend` forms, from the horizontal sums `hsum` wrote
    let s = hs[(y - 1u) * p.width + x] + hs[y * p.width + x] + hs[(y + 1u) * p.width + x];
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
    let m = abs(s) * gate[0];
    let wgt = p.a * max(1.0 - m, 0.0);
    let i = y * p.width + x;
    outp[i] = cur[i] + wgt * (prev[i] - cur[i]);
}

var<workgroup> g_count: atomic<u32>;
var<workgroup> g_max: atomic<u32>;
var<workgroup> g_min: atomic<u32>;
var<workgroup> g_hist: array<atomic<u32>, 1024>;
var<workgroup> g_sel: array<u32, 2>;   // selected bin, rank within it

// Finds the bin holding order statistic `k` among `g_hist` (thread 0 only).
fn select_bin(k: u32) {
    var cum = 0u;
    var bin = 1023u;
    var rank = 0u;
    for (var b = 0u; b < 1024u; b = b + 1u) {
        let c = atomicLoad(&g_hist[b]);
        if (cum + c > k) {
            bin = b;
            rank = k - cum;
            break;
        }
        cum = cum + c;
    }
    g_sel[0] = bin;
    g_sel[1] = rank;
}

@compute @workgroup_size(256, 1, 1)
fn gate_select(@builtin(local_invocation_index) li: u32) {
    let per = (p.n + 255u) / 256u;
    if (li == 0u) {
        atomicStore(&g_count, 0u);
        atomicStore(&g_max, 0u);
        atomicStore(&g_min, 0xffffffffu);
    }
    for (var b = li; b < 1024u; b = b + 256u) { atomicStore(&g_hist[b], 0u); }
    workgroupBarrier();
    for (var k = 0u; k < per; k = k + 1u) {
        let i = li + k * 256u;
        if (i < p.n && samples[i] >= 0.0) {
            atomicAdd(&g_count, 1u);
            // non-negative floats order like their bit patterns
            atomicMax(&g_max, bitcast<u32>(samples[i]));
        }
    }
    workgroupBarrier();
    let count = atomicLoad(&g_count);
    let vmax = bitcast<f32>(atomicLoad(&g_max));
    let rank = count / 4u;
    let inv1 = select(0.0, 1024.0 / vmax, vmax > 0.0);
    for (var k = 0u; k < per; k = k + 1u) {
        let i = li + k * 256u;
        if (i < p.n && samples[i] >= 0.0) {
            atomicAdd(&g_hist[min(u32(samples[i] * inv1), 1023u)], 1u);
        }
    }
    workgroupBarrier();
    if (li == 0u) { select_bin(rank); }
    workgroupBarrier();
    let b1 = g_sel[0];
    let r1 = g_sel[1];
    let lo = f32(b1) * vmax / 1024.0;
    let width1 = vmax / 1024.0;
    let inv2 = select(0.0, 1024.0 / width1, width1 > 0.0);
    for (var b = li; b < 1024u; b = b + 256u) { atomicStore(&g_hist[b], 0u); }
    workgroupBarrier();
    for (var k = 0u; k < per; k = k + 1u) {
        let i = li + k * 256u;
        if (i < p.n && samples[i] >= 0.0) {
            let v = samples[i];
            if (min(u32(v * inv1), 1023u) == b1) {
                atomicAdd(&g_hist[min(u32(max(v - lo, 0.0) * inv2), 1023u)], 1u);
            }
        }
    }
    workgroupBarrier();
    if (li == 0u) { select_bin(r1); }
    workgroupBarrier();
    let b2 = g_sel[0];
    for (var k = 0u; k < per; k = k + 1u) {
        let i = li + k * 256u;
        if (i < p.n && samples[i] >= 0.0) {
            let v = samples[i];
            if (min(u32(v * inv1), 1023u) == b1 && min(u32(max(v - lo, 0.0) * inv2), 1023u) == b2) {
                atomicMin(&g_min, bitcast<u32>(v));
            }
        }
    }
    workgroupBarrier();
    if (li == 0u) {
        var sigma = 1.0;
        let mn = atomicLoad(&g_min);
        if (count >= 16u) {
            // (no sample in the fine bin can only come from rounding: take its lower edge)
            sigma = select(bitcast<f32>(mn), lo + f32(b2) * width1 / 1024.0, mn == 0xffffffffu) / 0.3186;
        }
        gate[0] = 1.0 / (p.motion_k * max(sigma, 1e-6) * 9.0);
    }
}

// CLAHE (fluoro_enhance::clahe::clahe): per-tile histograms with global atomics, then one
// workgroup per tile clips (fractional counts, uniform redistribution) and builds the
// cumulative mapping, then every pixel interpolates between four tile mappings.

struct Params {
    width: u32,
    height: u32,
    tx: u32,
    ty: u32,
    tw: u32,
    th: u32,
    bins: u32,
    _p0: u32,
    lo: f32,
    hi: f32,
    scale: f32,      // bins / (hi - lo)
    clip: f32,       // clip limit (multiples of the mean bin height)
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> luts: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;

fn bin_of(v: f32) -> u32 {
    return u32(clamp(i32((v - p.lo) * p.scale), 0, i32(p.bins) - 1));
}

@compute @workgroup_size(256, 1, 1)
fn clear(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < p.tx * p.ty * p.bins) {
        atomicStore(&hist[gid.x], 0u);
    }
}

@compute @workgroup_size(16, 16, 1)
fn histogram(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let i = y * p.width + x;
    if (mask[i] == 0.0) { return; }
    let t = (y / p.th) * p.tx + (x / p.tw);
    atomicAdd(&hist[t * p.bins + bin_of(src[i])], 1u);
}

var<workgroup> part: array<f32, 256>;
var<workgroup> total: f32;

@compute @workgroup_size(256, 1, 1)
fn mapping(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.x;
    let base = t * p.bins;
    let per = (p.bins + 255u) / 256u;
    // count and excess
    var count = 0.0;
    for (var k = 0u; k < per; k = k + 1u) {
        let b = li * per + k;
        if (b < p.bins) { count = count + f32(atomicLoad(&hist[base + b])); }
    }
    part[li] = count;
    workgroupBarrier();
    if (li == 0u) {
        var s = 0.0;
        for (var k = 0u; k < 256u; k = k + 1u) { s = s + part[k]; }
        total = s;
    }
    workgroupBarrier();
    let n = total;
    if (n == 0.0) {
        for (var k = 0u; k < per; k = k + 1u) {
            let b = li * per + k;
            if (b < p.bins) { luts[base + b] = p.lo + (f32(b) + 0.5) / p.scale; }
        }
        return;
    }
    let limit = max(p.clip * n / f32(p.bins), 1.0);
    var excess = 0.0;
    for (var k = 0u; k < per; k = k + 1u) {
        let b = li * per + k;
        if (b < p.bins) { excess = excess + max(f32(atomicLoad(&hist[base + b])) - limit, 0.0); }
    }
    workgroupBarrier();
    part[li] = excess;
    workgroupBarrier();
    if (li == 0u) {
        var s = 0.0;
        for (var k = 0u; k < 256u; k = k + 1u) { s = s + part[k]; }
        total = s;
    }
    workgroupBarrier();
    let each = total / f32(p.bins);
    // local clipped sums, then an exclusive scan of the 256 partial sums
    var local_sum = 0.0;
    for (var k = 0u; k < per; k = k + 1u) {
        let b = li * per + k;
        if (b < p.bins) { local_sum = local_sum + min(f32(atomicLoad(&hist[base + b])), limit) + each; }
    }
    workgroupBarrier();
    part[li] = local_sum;
    workgroupBarrier();
    if (li == 0u) {
        var s = 0.0;
        for (var k = 0u; k < 256u; k = k + 1u) {
            let v = part[k];
            part[k] = s;
            s = s + v;
        }
    }
    workgroupBarrier();
    var acc = part[li];
    let kk = (p.hi - p.lo) / n;
    for (var k = 0u; k < per; k = k + 1u) {
        let b = li * per + k;
        if (b < p.bins) {
            acc = acc + min(f32(atomicLoad(&hist[base + b])), limit) + each;
            luts[base + b] = p.lo + acc * kk;
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn apply(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) { return; }
    let fy = f32(y) / f32(p.th) - 0.5;
    let y1 = floor(fy);
    let ya = fy - y1;
    let ty1 = min(u32(max(y1, 0.0)), p.ty - 1u);
    let ty2 = min(u32(max(y1 + 1.0, 0.0)), p.ty - 1u);
    let fx = f32(x) / f32(p.tw) - 0.5;
    let x1 = floor(fx);
    let xa = fx - x1;
    let tx1 = min(u32(max(x1, 0.0)), p.tx - 1u);
    let tx2 = min(u32(max(x1 + 1.0, 0.0)), p.tx - 1u);
    let b = bin_of(src[y * p.width + x]);
    let l11 = luts[(ty1 * p.tx + tx1) * p.bins + b];
    let l12 = luts[(ty1 * p.tx + tx2) * p.bins + b];
    let l21 = luts[(ty2 * p.tx + tx1) * p.bins + b];
    let l22 = luts[(ty2 * p.tx + tx2) * p.bins + b];
    let top = l11 + xa * (l12 - l11);
    let bot = l21 + xa * (l22 - l21);
    dst[y * p.width + x] = top + ya * (bot - top);
}

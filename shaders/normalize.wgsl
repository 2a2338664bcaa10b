// Normalisation: optional log transform of linear data, then pixels outside the shutter
// replaced by the mean inside it. Three entry points, dispatched in order:
//   `transform`  (one thread per pixel)        src -> dst, per-workgroup masked sums
//   `reduce`     (one workgroup)               partial sums -> mean
//   `fill`       (one thread per pixel)        masked-out pixels of dst <- mean
// Matches fluoro_enhance::normalize::normalize.

struct Params {
    width: u32,
    height: u32,
    linear: u32,     // 1: dst = log_scale * ln(max(v, 1))
    groups: u32,     // number of partial sums
    log_scale: f32,
    _p0: f32,
    _p1: f32,
    _p2: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;

var<workgroup> sums: array<vec2<f32>, 256>;

// Sums `sums` into sums[0] (every invocation of the workgroup must call it).
fn tree_sum(li: u32) {
    workgroupBarrier();
    var stride = 128u;
    loop {
        if (stride == 0u) { break; }
        if (li < stride) {
            sums[li] = sums[li] + sums[li + stride];
        }
        workgroupBarrier();
        stride = stride / 2u;
    }
}

@compute @workgroup_size(256, 1, 1)
fn transform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let n = p.width * p.height;
    let i = gid.x;
    var s = vec2<f32>(0.0, 0.0);
    if (i < n) {
        var v = src[i];
        if (p.linear == 1u) {
            v = p.log_scale * log(max(v, 1.0));
        }
        dst[i] = v;
        if (mask[i] != 0.0) {
            s = vec2<f32>(v, 1.0);
        }
    }
    sums[li] = s;
    tree_sum(li);
    if (li == 0u) {
        partial[wg.x] = sums[0];
    }
}

@compute @workgroup_size(256, 1, 1)
fn reduce(@builtin(local_invocation_index) li: u32) {
    var s = vec2<f32>(0.0, 0.0);
    var i = li;
    loop {
        if (i >= p.groups) { break; }
        s = s + partial[i];
        i = i + 256u;
    }
    sums[li] = s;
    tree_sum(li);
    if (li == 0u) {
        let t = sums[0];
        if (t.y > 0.0) { mean[0] = t.x / t.y; } else { mean[0] = 0.0; }
    }
}

@compute @workgroup_size(256, 1, 1)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < p.width * p.height && mask[i] == 0.0) {
        dst[i] = mean[0];
    }
}

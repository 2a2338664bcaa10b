//! Explicit bind-group layouts and pipelines (one layout per shader module, shared by its
//! entry points, so one bind group serves every dispatch of a module).

/// Binding kinds, in binding order.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// Uniform buffer.
    Uniform,
    /// Read-only storage buffer.
    Read,
    /// Read-write storage buffer.
    Write,
}

/// A bind-group layout for `slots` (bindings 0..n).
pub fn bind_group_layout(
    device: &wgpu::Device,
    label: &str,
    slots: &[Slot],
) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match s {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::Write => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// A compiled module with its layout and one pipeline per entry point.
pub struct Module {
    /// The layout every entry point uses.
    pub layout: wgpu::BindGroupLayout,
    /// Pipelines by entry point name, in the order given.
    pub pipelines: Vec<wgpu::ComputePipeline>,
}

impl Module {
    /// Compiles `src` and builds a pipeline for each of `entries`.
    pub fn new(
        device: &wgpu::Device,
        label: &str,
        src: &str,
        slots: &[Slot],
        entries: &[&str],
    ) -> Self {
        let layout = bind_group_layout(device, label, slots);
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipelines = entries
            .iter()
            .map(|e| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(e),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(e),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        Self { layout, pipelines }
    }

    /// A bind group of `buffers` (bindings 0..n) for this module.
    pub fn bind(&self, device: &wgpu::Device, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &entries,
        })
    }
}

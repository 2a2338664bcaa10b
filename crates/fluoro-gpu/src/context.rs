//! The wgpu device: adapter selection, limits, and blocking read-back.

use std::sync::mpsc;

/// GPU errors.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter (no GPU, and no software Vulkan/GL driver such as Mesa's lavapipe).
    #[error(
        "no GPU adapter found (install a GPU driver, or Mesa's mesa-vulkan-drivers for the lavapipe software adapter): {0}"
    )]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("cannot create a device on {adapter}: {detail}")]
    Device {
        /// Adapter description.
        adapter: String,
        /// Why.
        detail: String,
    },
    /// Mapping a read-back buffer failed.
    #[error("GPU read-back failed: {0}")]
    Readback(String),
    /// A frame larger than the device's buffer limits.
    #[error("frame of {width}x{height} exceeds the device's buffer limit of {limit} bytes")]
    TooLarge {
        /// Columns.
        width: usize,
        /// Rows.
        height: usize,
        /// Largest storage buffer binding.
        limit: u64,
    },
}

/// A device and queue with the adapter they came from.
#[derive(Debug)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is.
    pub info: wgpu::AdapterInfo,
    /// Limits granted.
    pub limits: wgpu::Limits,
    /// True when the device records GPU timestamps (per-stage times in `fluoro bench`).
    pub timestamps: bool,
}

impl GpuContext {
    /// Picks the best adapter (a discrete GPU over an integrated one over a software one).
    /// `WGPU_BACKEND=vulkan|gl` and `WGPU_ADAPTER_NAME` select explicitly.
    pub fn new() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("fluoro"),
            required_limits: limits.clone(),
            required_features: if timestamps {
                wgpu::Features::TIMESTAMP_QUERY
            } else {
                wgpu::Features::empty()
            },
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device {
            adapter: describe(&info),
            detail: e.to_string(),
        })?;
        Ok(Self {
            device,
            queue,
            info,
            limits,
            timestamps,
        })
    }

    /// "name (backend, device type)".
    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// True for a CPU (software) adapter such as lavapipe or llvmpipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Copies `src` (a STORAGE | COPY_SRC buffer) into `staging` (MAP_READ | COPY_DST, at
    /// least as large), waits, and returns the floats.
    pub fn read_f32(
        &self,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        len: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), GpuError> {
        let bytes = (len * 4) as u64;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(src, 0, staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        self.map_read(staging, len, out)
    }

    /// Maps `staging` (already filled by a submitted copy), waits, and reads `len` floats.
    pub fn map_read(
        &self,
        staging: &wgpu::Buffer,
        len: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), GpuError> {
        self.map_read_pod(staging, len, out)
    }

    /// Like [`GpuContext::map_read`] for any plain-data element type.
    pub fn map_read_pod<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        len: usize,
        out: &mut Vec<T>,
    ) -> Result<(), GpuError> {
        let slice = staging.slice(0..(len * std::mem::size_of::<T>()) as u64);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            out.clear();
            out.extend_from_slice(bytemuck::cast_slice(&view));
        }
        staging.unmap();
        Ok(())
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

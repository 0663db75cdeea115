//! The per-GPU runtime handle behind `Device::Cuda(i)`: one context, one stream, the kernel cache and
//! the caching allocator. Opened lazily, once per ordinal and process; a failure to open is remembered
//! with its reason and returned as [`Error::DeviceUnavailable`] on every later request.
//!
//! Everything of a device runs on its one stream, so ops are ordered without events and a buffer
//! released after its last use was enqueued can be reused at once by the next op.
//!
//! Kernels are found by name: the first use of `<op>_<dtype>` scans the PTX of every module in
//! `kernels::ptx::MODULES` (once per process) for `.entry <name>`, loads that module into the context
//! (once per device) and caches the function.

use super::pool::{CachingPool, PoolStats, RawAllocator};
use crate::{Device, Error, Result};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr, DriverError,
    LaunchConfig, PushKernelArg, sys,
};
use kernels::attention::cuda::AttnArgs;
use kernels::attention::dual_cuda::DualAttnArgs;
use kernels::conv::cuda::ConvArgs;
use kernels::cuda_abi::{LaunchDims, StridedArg};
use kernels::gemm::cuda::GemmArgs;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// How the PTX embedded in this build was made (kernels/build.rs); quoted in version-mismatch errors.
const PTX_ORIGIN: &str = "the embedded PTX was built by nvcc 13.0 for virtual architecture compute_80 \
    (or $CUDA_COMPUTE_CAP at build time), so the driver must support CUDA 13.0 (NVIDIA driver >= 580)";

/// Locks a mutex, ignoring poisoning (a panic elsewhere must not turn into a panic here).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A driver error as text: its name and description.
pub(crate) fn driver_msg(e: &DriverError) -> String {
    let name =
        e.error_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|_| format!("{:?}", e.0));
    match e.error_string() {
        Ok(s) => format!("{name}: {}", s.to_string_lossy()),
        Err(_) => name,
    }
}

/// The allocator the pool calls: plain stream-ordered device allocations.
pub struct DriverAlloc {
    stream: Arc<CudaStream>,
}

impl RawAllocator for DriverAlloc {
    type Block = CudaSlice<u8>;
    type Error = DriverError;
    fn alloc(&mut self, bytes: usize) -> std::result::Result<CudaSlice<u8>, DriverError> {
        // SAFETY: the memory is uninitialised; every op writes its whole output before it is read
        // (or zero-fills it explicitly), and tensors never expose device memory as host values.
        unsafe { self.stream.alloc::<u8>(bytes) }
    }
    fn free(&mut self, block: CudaSlice<u8>) {
        drop(block);
    }
}

/// One opened GPU.
pub struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    pool: Mutex<CachingPool<DriverAlloc>>,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// `MATRYOSHKA_CUDA_SYNC=1`: synchronise after every launch so that an asynchronous fault is
    /// reported by the launch that caused it (slow; for debugging).
    sync_each_launch: bool,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice(cuda:{})", self.ordinal)
    }
}

type Registry = Mutex<HashMap<usize, std::result::Result<Arc<CudaDevice>, String>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The opened device `ordinal`, opening it on first use. Never panics: a missing driver, a missing
/// GPU or a failed context creation is a [`Error::DeviceUnavailable`] with the reason.
pub fn device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    let mut reg = lock(registry());
    let entry = reg.entry(ordinal).or_insert_with(|| open(ordinal).map(Arc::new));
    entry.clone().map_err(|reason| Error::DeviceUnavailable { device: Device::Cuda(ordinal), reason })
}

/// Whether the CUDA driver library can be loaded (cheap after the first call).
pub fn driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        // SAFETY: only tries to dlopen libcuda; loading the system driver library has no
        // preconditions on our side. A panic inside is caught.
        catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false)
    })
}

/// Number of visible GPUs, or why none can be used.
pub fn device_count() -> std::result::Result<usize, String> {
    if !driver_present() {
        return Err("no NVIDIA driver (libcuda.so) found: install the NVIDIA driver (>= 580 for the \
                    CUDA 13.0 PTX of this build) or run on a machine with a GPU"
            .to_string());
    }
    match catch_unwind(CudaContext::device_count) {
        Ok(Ok(n)) => Ok(n.max(0) as usize),
        Ok(Err(e)) => Err(format!("the CUDA driver failed to initialise (cuInit): {}", driver_msg(&e))),
        Err(_) => Err("the CUDA driver library is present but could not be used (missing symbols: \
                       driver too old for CUDA 13.0?)"
            .to_string()),
    }
}

fn open(ordinal: usize) -> std::result::Result<CudaDevice, String> {
    let count = device_count()?;
    if ordinal >= count {
        return Err(format!(
            "GPU {ordinal} requested but {count} CUDA device(s) are visible (check CUDA_VISIBLE_DEVICES \
             and nvidia-smi)"
        ));
    }
    let ctx = match catch_unwind(|| CudaContext::new(ordinal)) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(format!("cannot create a CUDA context on GPU {ordinal}: {}", driver_msg(&e)));
        }
        Err(_) => {
            return Err(format!("cannot create a CUDA context on GPU {ordinal}: the driver call panicked"));
        }
    };
    // SAFETY: every buffer of this device is used on the one stream created below, which orders all
    // uses; event tracking (for multi-stream use) is therefore unnecessary. No slice exists yet.
    unsafe { ctx.disable_event_tracking() };
    let stream = match catch_unwind(AssertUnwindSafe(|| ctx.new_stream())) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot create a stream on GPU {ordinal}: {}", driver_msg(&e))),
        Err(_) => return Err(format!("cannot create a stream on GPU {ordinal}: the driver call panicked")),
    };
    let sync_each_launch = std::env::var("MATRYOSHKA_CUDA_SYNC").is_ok_and(|v| v != "0" && !v.is_empty());
    Ok(CudaDevice {
        ordinal,
        ctx,
        pool: Mutex::new(CachingPool::new(DriverAlloc { stream: stream.clone() })),
        stream,
        modules: Mutex::new(HashMap::new()),
        functions: Mutex::new(HashMap::new()),
        sync_each_launch,
    })
}

/// Kernel name → index into `kernels::ptx::MODULES` of the module that declares `.entry <name>`.
fn kernel_index() -> &'static HashMap<String, usize> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, (_, ptx)) in kernels::ptx::MODULES.iter().enumerate() {
            for name in ptx_entries(ptx) {
                m.entry(name.to_string()).or_insert(i);
            }
        }
        m
    })
}

/// The kernel names a PTX text declares (`.entry <name>(`).
pub(crate) fn ptx_entries(ptx: &str) -> impl Iterator<Item = &str> {
    ptx.lines().filter_map(|line| {
        let rest = line.split(".entry").nth(1)?;
        let name = rest.trim_start().split(|c: char| c == '(' || c.is_whitespace()).next()?;
        (!name.is_empty()).then_some(name)
    })
}

/// Whether this build embeds a kernel of that name (no GPU needed).
pub fn has_kernel(name: &str) -> bool {
    kernel_index().contains_key(name)
}

/// Per-kernel resources reported by the driver ([`CudaDevice::kernel_info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    pub registers: i32,
    pub static_shared_bytes: i32,
    pub local_bytes: i32,
    pub max_threads_per_block: i32,
}

/// One kernel argument. Pointers are raw device addresses (see [`DeviceBuffer::ptr`]).
#[derive(Clone, Copy, Debug)]
pub enum KArg {
    Ptr(u64),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Strided(StridedArg),
    /// The by-value `struct GemmArgs` of gemm.cu (`repr(C)` mirror in `kernels::gemm::cuda`).
    Gemm(GemmArgs),
    /// The by-value `struct ConvArgs` of conv.cu (`repr(C)` mirror in `kernels::conv::cuda`).
    Conv(ConvArgs),
    /// The by-value `struct AttnArgs` of attention.cu (mirror in `kernels::attention::cuda`).
    Attn(AttnArgs),
    /// The by-value `struct DualAttnArgs` of dual.cu (mirror in `kernels::attention::dual_cuda`).
    DualAttn(DualAttnArgs),
}

impl CudaDevice {
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// An error for a failed driver call during `what`.
    pub(crate) fn fail(&self, what: impl Into<String>, e: &DriverError) -> Error {
        Error::DeviceFailure { device: self.device(), what: what.into(), reason: driver_msg(e) }
    }

    /// Waits for every enqueued op of this device.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| self.fail("synchronize", &e))
    }

    /// The loaded function `name` (loading its module on first use).
    pub fn function(&self, name: &str) -> Result<CudaFunction> {
        if let Some(f) = lock(&self.functions).get(name) {
            return Ok(f.clone());
        }
        let &idx = kernel_index()
            .get(name)
            .ok_or_else(|| Error::KernelNotFound { kernel: name.to_string(), device: self.device() })?;
        let (module_name, ptx) = kernels::ptx::MODULES[idx];
        let module = {
            let mut modules = lock(&self.modules);
            match modules.get(module_name) {
                Some(m) => m.clone(),
                None => {
                    let m = self
                        .ctx
                        .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
                        .map_err(|e| self.module_error(module_name, &e))?;
                    modules.insert(module_name, m.clone());
                    m
                }
            }
        };
        let f = module.load_function(name).map_err(|e| self.fail(format!("loading kernel {name}"), &e))?;
        lock(&self.functions).insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// Resource use of kernel `name` as compiled for this GPU (loads it): registers per thread,
    /// static shared memory, local (spill) memory per thread and the largest launchable block — what
    /// a kernel engineer needs to read occupancy.
    pub fn kernel_info(&self, name: &str) -> Result<KernelInfo> {
        use sys::CUfunction_attribute_enum as A;
        let f = self.function(name)?;
        let get = |a: A, what: &str| {
            f.get_attribute(a).map_err(|e| self.fail(format!("reading {what} of kernel {name}"), &e))
        };
        Ok(KernelInfo {
            registers: get(A::CU_FUNC_ATTRIBUTE_NUM_REGS, "registers")?,
            static_shared_bytes: get(A::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "shared memory")?,
            local_bytes: get(A::CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, "local memory")?,
            max_threads_per_block: get(A::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "max threads")?,
        })
    }

    /// Runs `work` (which enqueues ops on this device) between two CUDA events and returns the GPU
    /// time between them in milliseconds. Host-side launch overhead counts only where it stalls the
    /// GPU, as in PyTorch's `torch.cuda.Event` timing.
    pub fn time_ms(&self, work: impl FnOnce() -> Result<()>) -> Result<f32> {
        let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.stream.record_event(flags).map_err(|e| self.fail("recording an event", &e))?;
        work()?;
        let end = self.stream.record_event(flags).map_err(|e| self.fail("recording an event", &e))?;
        start.elapsed_ms(&end).map_err(|e| self.fail("reading event time", &e))
    }

    fn module_error(&self, module: &str, e: &DriverError) -> Error {
        use sys::cudaError_enum as E;
        let what = format!("loading CUDA module {module}");
        match e.0 {
            E::CUDA_ERROR_UNSUPPORTED_PTX_VERSION
            | E::CUDA_ERROR_INVALID_PTX
            | E::CUDA_ERROR_NO_BINARY_FOR_GPU
            | E::CUDA_ERROR_INVALID_IMAGE
            | E::CUDA_ERROR_JIT_COMPILER_NOT_FOUND => Error::DeviceFailure {
                device: self.device(),
                what,
                reason: format!(
                    "{}. The driver cannot JIT-compile this PTX: {PTX_ORIGIN}. Update the NVIDIA driver, \
                     or rebuild with a toolchain the driver supports and CUDA_COMPUTE_CAP set to this \
                     GPU's compute capability (e.g. CUDA_COMPUTE_CAP=90 cargo build --features cuda)",
                    driver_msg(e)
                ),
            },
            _ => self.fail(what, e),
        }
    }

    /// Launches kernel `name` over `dims` with `args` (in the kernel's parameter order) on this
    /// device's stream.
    pub fn launch(&self, name: &str, dims: LaunchDims, args: &[KArg]) -> Result<()> {
        let f = self.function(name)?;
        let launch_err = |reason: String| Error::KernelLaunch {
            kernel: name.to_string(),
            device: self.device(),
            shape: format!(
                "grid {:?}, block {:?}, {} B dynamic shared memory",
                dims.grid, dims.block, dims.shared_mem_bytes
            ),
            reason,
        };
        if dims.shared_mem_bytes > 48 * 1024 {
            f.set_attribute(
                sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                dims.shared_mem_bytes as i32,
            )
            .map_err(|e| {
                launch_err(format!("cannot raise the dynamic shared memory limit: {}", driver_msg(&e)))
            })?;
        }
        let mut b = self.stream.launch_builder(&f);
        for a in args {
            match a {
                KArg::Ptr(p) | KArg::U64(p) => b.arg(p),
                KArg::I32(v) => b.arg(v),
                KArg::I64(v) => b.arg(v),
                KArg::U8(v) => b.arg(v),
                KArg::U16(v) => b.arg(v),
                KArg::U32(v) => b.arg(v),
                KArg::F32(v) => b.arg(v),
                KArg::F64(v) => b.arg(v),
                KArg::Strided(v) => b.arg(v),
                KArg::Gemm(v) => b.arg(v),
                KArg::Conv(v) => b.arg(v),
                KArg::Attn(v) => b.arg(v),
                KArg::DualAttn(v) => b.arg(v),
            };
        }
        let cfg = LaunchConfig {
            grid_dim: dims.grid,
            block_dim: dims.block,
            shared_mem_bytes: dims.shared_mem_bytes,
        };
        // SAFETY: the argument list matches the kernel's parameters (each op module passes them in
        // the order documented in the family's `cuda.rs`); pointers are live buffers of this device
        // sized for the launch, kept alive by the caller until the op returns, and later reuse of a
        // released buffer is ordered after this launch by the single stream.
        unsafe { b.launch(cfg) }.map_err(|e| launch_err(driver_msg(&e)))?;
        if self.sync_each_launch {
            self.stream
                .synchronize()
                .map_err(|e| launch_err(format!("fault while running: {}", driver_msg(&e))))?;
        }
        Ok(())
    }

    /// A device buffer of at least `bytes` bytes from the caching pool (uninitialised).
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> Result<DeviceBuffer> {
        let (block, bucket) = lock(&self.pool)
            .acquire(bytes)
            .map_err(|e| self.fail(format!("allocating {bytes} bytes"), &e))?;
        let ptr = {
            let (ptr, _sync) = block.device_ptr(&self.stream);
            ptr
        };
        Ok(DeviceBuffer { dev: self.clone(), block: Some(block), ptr, bucket, bytes })
    }

    /// A zero-filled device buffer of `bytes` bytes.
    pub fn alloc_zeros(self: &Arc<Self>, bytes: usize) -> Result<DeviceBuffer> {
        let mut b = self.alloc(bytes)?;
        if bytes > 0 {
            let block = b.block.as_mut().expect("a live buffer holds its block");
            let mut v = block.slice_mut(0..bytes);
            self.stream.memset_zeros(&mut v).map_err(|e| self.fail("zero-filling a buffer", &e))?;
        }
        Ok(b)
    }

    /// Copies a host slice into a fresh device buffer.
    pub fn htod<T: DeviceRepr>(self: &Arc<Self>, host: &[T]) -> Result<DeviceBuffer> {
        let bytes = std::mem::size_of_val(host);
        let mut b = self.alloc(bytes)?;
        if !host.is_empty() {
            let block = b.block.as_mut().expect("a live buffer holds its block");
            // SAFETY: the block holds at least `bytes` bytes (checked by `transmute_mut`, which
            // returns None otherwise) and every bit pattern is written by the copy below.
            let mut view = unsafe { block.transmute_mut::<T>(host.len()) }
                .ok_or_else(|| Error::invalid("htod", "device block smaller than the host data"))?;
            self.stream
                .memcpy_htod(host, &mut view)
                .map_err(|e| self.fail(format!("copying {bytes} bytes to the GPU"), &e))?;
        }
        Ok(b)
    }

    /// Copies `n` elements of type `T` starting at element `offset` of `buf` to the host.
    pub fn dtoh<T: DeviceRepr + Default + Clone>(
        &self,
        buf: &DeviceBuffer,
        offset: usize,
        n: usize,
    ) -> Result<Vec<T>> {
        let mut out = vec![T::default(); n];
        if n == 0 {
            return Ok(out);
        }
        let need = (offset + n) * std::mem::size_of::<T>();
        if need > buf.bytes {
            return Err(Error::invalid(
                "dtoh",
                format!("reading {n} elements at offset {offset} from a {}-byte buffer", buf.bytes),
            ));
        }
        let block = buf.block.as_ref().expect("a live buffer holds its block");
        // SAFETY: the view covers `offset + n` elements of T inside the block (bounds checked above and
        // by `transmute`); the element types used are plain numbers valid for any bit pattern.
        let view = unsafe { block.transmute::<T>(offset + n) }
            .ok_or_else(|| Error::invalid("dtoh", "device block smaller than requested"))?;
        let view = view.slice(offset..offset + n);
        self.stream
            .memcpy_dtoh(&view, &mut out)
            .map_err(|e| self.fail(format!("copying {need} bytes to the host"), &e))?;
        self.synchronize()?;
        Ok(out)
    }

    /// Counters of this device's caching allocator.
    pub fn memory_stats(&self) -> PoolStats {
        lock(&self.pool).stats()
    }

    /// Frees every cached (unused) block back to the driver.
    pub fn empty_cache(&self) -> Result<()> {
        self.synchronize()?;
        lock(&self.pool).empty_cache();
        Ok(())
    }
}

/// A device allocation from the caching pool; returns to the pool when dropped.
pub struct DeviceBuffer {
    dev: Arc<CudaDevice>,
    block: Option<CudaSlice<u8>>,
    ptr: u64,
    bucket: usize,
    bytes: usize,
}

impl DeviceBuffer {
    /// The raw device address, for kernel arguments.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// Address of element `i` of type `T`.
    pub fn ptr_at<T>(&self, i: usize) -> u64 {
        self.ptr + (i * std::mem::size_of::<T>()) as u64
    }
    /// Bytes requested (the block may be larger).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.block.take() {
            lock(&self.dev.pool).release(b, self.bucket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptx_entry_names_are_found() {
        let ptx = "//\n.visible .entry unary_f32(\n\t.param .u64 a\n)\n.visible .entry binary_f64(\n.func helper(\n";
        assert_eq!(ptx_entries(ptx).collect::<Vec<_>>(), vec!["unary_f32", "binary_f64"]);
    }

    #[test]
    fn the_embedded_ptx_declares_the_elementwise_kernels() {
        for dt in ["f32", "f64", "f16", "bf16"] {
            for op in ["unary", "unary_backward", "binary", "compare"] {
                assert!(has_kernel(&format!("{op}_{dt}")), "{op}_{dt} missing from kernels::ptx::MODULES");
            }
        }
        assert!(!has_kernel("no_such_kernel_f32"));
    }

    #[test]
    fn opening_a_gpu_never_panics() {
        // Here (no driver) this is an error naming the reason; on a GPU machine it may succeed.
        match device(0) {
            Ok(d) => assert_eq!(d.ordinal(), 0),
            Err(Error::DeviceUnavailable { device, reason }) => {
                assert_eq!(device, Device::Cuda(0));
                assert!(!reason.is_empty());
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        // An absurd ordinal is always unavailable.
        assert!(matches!(device(1000), Err(Error::DeviceUnavailable { .. })));
    }
}

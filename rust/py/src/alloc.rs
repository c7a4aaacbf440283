//! Process-wide allocator tuning for bulk transfers (glibc only).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    pub const M_TRIM_THRESHOLD: c_int = -1;
    pub const M_MMAP_THRESHOLD: c_int = -3;

    extern "C" {
        pub fn mallopt(param: c_int, value: c_int) -> c_int;
    }
}

/// Keeps glibc from returning memory to the kernel after every burst of large buffers.
///
/// Bulk streams allocate a `bytes` per socket read (up to 1 MiB) and free them in bursts; with
/// glibc's defaults the freed top of the heap is trimmed and the next burst page-faults it
/// back in, which cost 15-25% of a receiver's CPU. This sets the trim threshold (free memory
/// kept at the top of the heap) and the mmap threshold (allocations served by their own
/// mapping) for the whole process. Returns False where the allocator is not glibc.
#[pyfunction]
#[pyo3(signature = (trim_threshold = 32 << 20, mmap_threshold = 4 << 20))]
fn tune_allocator(trim_threshold: u32, mmap_threshold: u32) -> PyResult<bool> {
    let trim = i32::try_from(trim_threshold).map_err(|_| PyValueError::new_err("too large"))?;
    let mmap = i32::try_from(mmap_threshold).map_err(|_| PyValueError::new_err("too large"))?;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; any value is accepted or refused.
        let ok = unsafe {
            glibc::mallopt(glibc::M_MMAP_THRESHOLD, mmap) == 1
                && glibc::mallopt(glibc::M_TRIM_THRESHOLD, trim) == 1
        };
        Ok(ok)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (trim, mmap);
        Ok(false)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tune_allocator, m)?)?;
    Ok(())
}

//! A small spinlock that never allocates and can be taken and released by fork handlers. Each
//! lock and unlock is counted per thread ([`crate::tls::locks_held`]), so a hook entered from a
//! signal handler knows whether the interrupted code holds a shim lock.
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialized by `locked`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above; the value moves with the lock.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinLocked<'_, T> {
        self.raw_lock();
        SpinLocked { lock: self }
    }

    /// Takes the lock without a [`SpinLocked`] (fork prepare handler); pair with
    /// [`Self::raw_unlock`].
    pub fn raw_lock(&self) {
        crate::tls::count_lock(1);
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                crate::sys::yield_now();
            }
        }
    }

    /// The value, for a caller that holds the lock through [`Self::raw_lock`].
    ///
    /// # Safety
    /// The caller holds the lock and keeps no other reference to the value.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn held(&self) -> &mut T {
        // SAFETY: the caller holds the lock, so this is the only access.
        unsafe { &mut *self.value.get() }
    }

    /// Releases a lock taken by [`Self::raw_lock`].
    pub fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
        crate::tls::count_lock(-1);
    }
}

/// The value of a [`SpinLock`] while it is held: taking the lock returns one, and dropping it
/// releases the lock.
pub struct SpinLocked<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinLocked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a SpinLocked exists only while its lock is held.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinLocked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a SpinLocked exists only while its lock is held, and `&mut self` makes this
        // borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinLocked<'_, T> {
    fn drop(&mut self) {
        self.lock.raw_unlock();
    }
}

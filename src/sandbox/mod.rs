//! The sandbox: emulators of the remote systems (to be written).

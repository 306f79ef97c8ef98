//! Wiring only (`shared::lambda_main!`): logging, config and the pool are set up once per
//! execution environment; the trigger's logic lives in the library.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

shared::lambda_main!(pre_sign_up);

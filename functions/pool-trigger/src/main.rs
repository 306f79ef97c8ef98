//! Wiring only (`shared::lambda_main!`): logging, config, the Cognito client and the answer
//! sender are set up once per execution environment; the resource's logic lives in the
//! library.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

shared::lambda_main!(pool_trigger);

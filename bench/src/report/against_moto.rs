//! Section 6: sg-ip-update's warm IP moves and drift-check's passes against moto. The passes'
//! table is written by [`crate::drift_check`], which `BENCH_ONLY=drift` uses alone.

use std::fmt::{self, Write as _};

use super::Report;
use crate::{
    drift_check::DriftCheck,
    drift_passes,
    sg_ip_update::SgIpUpdate,
    stats::{median, pct},
};

impl Report {
    /// Section 6, first part: sg-ip-update's warm IP moves.
    pub(super) fn sg_ip_update(&mut self, sg: &SgIpUpdate) -> fmt::Result {
        let report = &mut self.body;
        writeln!(report, "## 6. sg-ip-update and drift-check against moto\n")?;
        writeln!(
            report,
            "- sg-ip-update, 200 warm IP moves (each a DescribeSecurityGroupRules and a ModifySecurityGroupRules): \
             p50 {:.2} ms, p99 {:.2} ms, {} errors.\n",
            median(&sg.warm_ms),
            pct(&sg.warm_ms, 0.99),
            sg.errors
        )?;
        Ok(())
    }

    /// Section 6, second part: drift-check's passes by pool size, between the markers a
    /// `BENCH_ONLY=drift` run replaces them by.
    pub(super) fn drift_check(&mut self, d: &DriftCheck) -> fmt::Result {
        for v in drift_passes::write_block(&mut self.body, d)? {
            self.target(v.name, v.met, v.measured);
        }
        Ok(())
    }
}

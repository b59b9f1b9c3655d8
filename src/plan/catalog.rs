//! EC2 instance catalog for the two families the published rtcd tables use: c6i (2023 table) and c7i
//! (2024 table), every size from large up to the largest and the metal sizes.
//!
//! Sources, per figure:
//! - vCPU and memory of c6i.xlarge (4 / 8 GiB) and c6i.2xlarge (8 / 16 GiB): calls-loadtest.md §2.4;
//!   c6i.2xlarge also offloader.md §6.1 ("8 vCPU / 16 GB").
//! - vCPU of c7i.xlarge (4), c7i.2xlarge (8), c7i.4xlarge (16): rtcd.md §6.1 and peers.md §2.2.
//! - Every other figure, and all network figures: AWS, "Amazon EC2 Instance Types" guide, compute
//!   optimized → performance and network specifications, as known to the author. The stored sources
//!   here confirm only some size names (e.g. c7i.metal-24xl and metal-48xl), not the figures: check
//!   them before relying on a size the tables never used. vCPU and memory follow the families' fixed
//!   ratio of 2 GiB per vCPU (a unit test holds them to it).
//! - Sizes up to 4xlarge are sold as "up to 12.5 Gbps": they hold a lower baseline and burst above it
//!   on network credits, so sustained media egress should stay under the baseline.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An instance family with a published rtcd table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(clap::ValueEnum)]
pub enum Family {
    /// Intel Ice Lake compute optimized; the April 2023 table (rtcd v0.10.0).
    C6i,
    /// Intel Sapphire Rapids compute optimized; the July 2024 table (rtcd v0.16.0).
    C7i,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Self::C6i => "c6i",
            Self::C7i => "c7i",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "c6i" => Ok(Self::C6i),
            "c7i" => Ok(Self::C7i),
            other => Err(format!(
                "unknown instance family {other:?}: expected c6i or c7i"
            )),
        }
    }
}

/// One instance size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Instance {
    /// The EC2 name, e.g. "c7i.2xlarge".
    pub name: &'static str,
    #[serde(skip)]
    pub family: Family,
    pub vcpus: u32,
    pub memory_gib: f64,
    /// Sustained network bandwidth in Gbit/s (equal to `burst_gbps` from 8xlarge up).
    pub baseline_gbps: f64,
    /// The "up to" or fixed network bandwidth in Gbit/s.
    pub burst_gbps: f64,
}

impl Instance {
    /// Memory in bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory_gib * 1024.0 * 1024.0 * 1024.0
    }
}

const fn inst(
    name: &'static str,
    family: Family,
    vcpus: u32,
    memory_gib: f64,
    baseline_gbps: f64,
    burst_gbps: f64,
) -> Instance {
    Instance {
        name,
        family,
        vcpus,
        memory_gib,
        baseline_gbps,
        burst_gbps,
    }
}

/// Every size, smallest first within a family.
pub static CATALOG: &[Instance] = {
    use Family::{C6i, C7i};
    &[
        inst("c6i.large", C6i, 2, 4.0, 0.781, 12.5),
        inst("c6i.xlarge", C6i, 4, 8.0, 1.562, 12.5),
        inst("c6i.2xlarge", C6i, 8, 16.0, 3.125, 12.5),
        inst("c6i.4xlarge", C6i, 16, 32.0, 6.25, 12.5),
        inst("c6i.8xlarge", C6i, 32, 64.0, 12.5, 12.5),
        inst("c6i.12xlarge", C6i, 48, 96.0, 18.75, 18.75),
        inst("c6i.16xlarge", C6i, 64, 128.0, 25.0, 25.0),
        inst("c6i.24xlarge", C6i, 96, 192.0, 37.5, 37.5),
        inst("c6i.32xlarge", C6i, 128, 256.0, 50.0, 50.0),
        inst("c6i.metal", C6i, 128, 256.0, 50.0, 50.0),
        inst("c7i.large", C7i, 2, 4.0, 0.781, 12.5),
        inst("c7i.xlarge", C7i, 4, 8.0, 1.562, 12.5),
        inst("c7i.2xlarge", C7i, 8, 16.0, 3.125, 12.5),
        inst("c7i.4xlarge", C7i, 16, 32.0, 6.25, 12.5),
        inst("c7i.8xlarge", C7i, 32, 64.0, 12.5, 12.5),
        inst("c7i.12xlarge", C7i, 48, 96.0, 18.75, 18.75),
        inst("c7i.16xlarge", C7i, 64, 128.0, 25.0, 25.0),
        inst("c7i.24xlarge", C7i, 96, 192.0, 37.5, 37.5),
        inst("c7i.metal-24xl", C7i, 96, 192.0, 37.5, 37.5),
        inst("c7i.48xlarge", C7i, 192, 384.0, 50.0, 50.0),
        inst("c7i.metal-48xl", C7i, 192, 384.0, 50.0, 50.0),
    ]
};

/// The size with this EC2 name.
pub fn lookup(name: &str) -> Option<&'static Instance> {
    CATALOG.iter().find(|i| i.name == name)
}

/// The sizes of one family, smallest first.
pub fn family(family: Family) -> impl Iterator<Item = &'static Instance> {
    CATALOG.iter().filter(move |i| i.family == family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_the_specs_match() {
        let x = lookup("c6i.xlarge").unwrap();
        assert_eq!((x.vcpus, x.memory_gib), (4, 8.0));
        let x = lookup("c6i.2xlarge").unwrap();
        assert_eq!((x.vcpus, x.memory_gib), (8, 16.0));
        assert_eq!(lookup("c7i.xlarge").unwrap().vcpus, 4);
        assert_eq!(lookup("c7i.2xlarge").unwrap().vcpus, 8);
        assert_eq!(lookup("c7i.4xlarge").unwrap().vcpus, 16);
        assert!(lookup("c5.xlarge").is_none());
    }

    #[test]
    fn every_size_keeps_the_family_ratio_and_order() {
        for f in [Family::C6i, Family::C7i] {
            let sizes: Vec<_> = family(f).collect();
            assert!(sizes.len() >= 10);
            for pair in sizes.windows(2) {
                assert!(
                    pair[0].vcpus <= pair[1].vcpus,
                    "{} before {}",
                    pair[0].name,
                    pair[1].name
                );
            }
            for i in sizes {
                assert_eq!(i.memory_gib, 2.0 * f64::from(i.vcpus), "{}", i.name);
                assert!(i.baseline_gbps <= i.burst_gbps, "{}", i.name);
                assert!(i.name.starts_with(f.name()));
            }
        }
    }
}

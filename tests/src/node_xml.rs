//! libvirt test-driver node files with Nova-like domains, for the compute tests and the
//! benchmark: deterministic for a given spec (own PRNG, no dependency), the same shape as
//! a Nova compute host (nova:instance metadata, memballoon, 1–2 file disks, 1–2
//! OVS-style interfaces). Use the file as `test:///ABS/PATH/node.xml`.

use std::fmt::Write as _;
use std::path::Path;

pub const NOVA_NS: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
const TEST_NS: &str = "http://libvirt.org/schemas/domain/test/1.0";

/// What to generate.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Number of Nova domains.
    pub n: usize,
    pub seed: u64,
    /// The last `shutoff` Nova domains are SHUTOFF.
    pub shutoff: usize,
    /// Add Nova ≥ 2025.2's `<nova:image>` element.
    pub image_meta: bool,
    /// Write `flavor@id` (Nova ≥ 2025.2); without it the flavor name stands in.
    pub flavor_id: bool,
    /// Extra domains without Nova metadata (appended after the Nova ones).
    pub non_nova: usize,
}

impl Default for NodeSpec {
    fn default() -> NodeSpec {
        NodeSpec {
            n: 10,
            seed: 42,
            shutoff: 0,
            image_meta: false,
            flavor_id: true,
            non_nova: 0,
        }
    }
}

/// A flavor: name, id, RAM MiB, disk GiB, swap MiB, ephemeral GiB, vCPUs.
#[derive(Debug, Clone, Copy)]
pub struct Flavor {
    pub name: &'static str,
    pub id: &'static str,
    pub ram: u64,
    pub disk: u64,
    pub swap: u64,
    pub ephemeral: u64,
    pub vcpus: u64,
}

pub const FLAVORS: [Flavor; 8] = [
    Flavor {
        name: "m1.tiny",
        id: "1",
        ram: 512,
        disk: 1,
        swap: 0,
        ephemeral: 0,
        vcpus: 1,
    },
    Flavor {
        name: "m1.small",
        id: "2",
        ram: 2048,
        disk: 20,
        swap: 0,
        ephemeral: 0,
        vcpus: 1,
    },
    Flavor {
        name: "m1.medium",
        id: "3",
        ram: 4096,
        disk: 40,
        swap: 0,
        ephemeral: 0,
        vcpus: 2,
    },
    Flavor {
        name: "m1.large",
        id: "4",
        ram: 8192,
        disk: 80,
        swap: 0,
        ephemeral: 0,
        vcpus: 4,
    },
    Flavor {
        name: "m1.xlarge",
        id: "5",
        ram: 16384,
        disk: 160,
        swap: 0,
        ephemeral: 0,
        vcpus: 8,
    },
    Flavor {
        name: "c1.medium.eph",
        id: "7d0c2b8e-5a5e-4c1e-9f43-0c9d0f1a2b31",
        ram: 4096,
        disk: 40,
        swap: 0,
        ephemeral: 20,
        vcpus: 4,
    },
    Flavor {
        name: "r1.large.swap",
        id: "b6e0f7a4-2f1d-4a8e-8c55-7e3b9d2c1f60",
        ram: 16384,
        disk: 80,
        swap: 4096,
        ephemeral: 0,
        vcpus: 4,
    },
    Flavor {
        name: "g1.2xlarge",
        id: "e2c7d9a1-6b4f-4f0e-a8d3-5c1b7e9f0a42",
        ram: 32768,
        disk: 200,
        swap: 2048,
        ephemeral: 100,
        vcpus: 16,
    },
];
const FLAVOR_WEIGHTS: [u64; 8] = [5, 25, 25, 15, 5, 10, 10, 5];

const IMAGES: [(&str, &str, &str); 4] = [
    ("bdaf114a-35e9-4163-accd-226d5944bf11", "ubuntu", "qcow2"),
    ("3c2a1f7e-8d4b-4e6a-9f0c-1b2d3e4f5a6b", "centos", "qcow2"),
    ("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "debian", "raw"),
    ("0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", "cirros", "qcow2"),
];
const ROLES: [&str; 10] = [
    "web",
    "api",
    "db",
    "cache",
    "worker",
    "batch",
    "ci-runner",
    "k8s-node",
    "kafka",
    "monitoring",
];
const USERS: [&str; 8] = [
    "admin", "alice", "bob", "carol", "dave", "erin", "frank", "grace",
];
const PROJECTS: [&str; 5] = ["admin", "demo", "ops", "data-platform", "ci"];

/// splitmix64: tiny, fast, and stable across versions (unlike `rand`'s generators).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
    pub fn uuid4(&mut self) -> String {
        let hi = (self.next_u64() & !0xf000) | 0x4000;
        let lo = (self.next_u64() & !(0b11 << 62)) | (0b10 << 62);
        let h = format!("{hi:016x}{lo:016x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// One domain to write.
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// libvirt name, e.g. `instance-00000100`.
    pub name: String,
    pub uuid: String,
    /// Nova display name; `None` writes no Nova metadata at all.
    pub display_name: Option<String>,
    pub flavor: Flavor,
    pub flavor_id: bool,
    pub user: (String, String),
    pub project: (String, String),
    pub image: (String, String, String),
    pub image_meta: bool,
    /// (MAC, Neutron port id) per interface; the tap is `tap` + port[..11].
    pub interfaces: Vec<(String, String)>,
    /// `Some(5)` for SHUTOFF.
    pub runstate: Option<u32>,
}

impl DomainSpec {
    /// The tap device names of the interfaces.
    pub fn taps(&self) -> Vec<String> {
        self.interfaces
            .iter()
            .map(|(_, port)| format!("tap{}", &port[..11]))
            .collect()
    }
    /// The disk target devs (vda, plus vdb for an ephemeral or swap disk).
    pub fn disks(&self) -> Vec<&'static str> {
        if self.flavor.ephemeral > 0 || self.flavor.swap > 0 {
            vec!["vda", "vdb"]
        } else {
            vec!["vda"]
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The `<domain>` element of one domain (also valid for `virDomainDefineXML`).
pub fn domain_xml(d: &DomainSpec) -> String {
    let mut x = String::with_capacity(2048);
    let ns = if d.runstate.is_some() {
        format!(" xmlns:test='{TEST_NS}'")
    } else {
        String::new()
    };
    let _ = writeln!(x, "  <domain type='test'{ns}>");
    let _ = writeln!(x, "    <name>{}</name>", esc(&d.name));
    let _ = writeln!(x, "    <uuid>{}</uuid>", d.uuid);
    let f = d.flavor;
    if let Some(display) = &d.display_name {
        let _ = writeln!(x, "    <metadata>");
        let _ = writeln!(x, "      <nova:instance xmlns:nova=\"{NOVA_NS}\">");
        let _ = writeln!(x, "        <nova:package version=\"32.0.0\"/>");
        let _ = writeln!(x, "        <nova:name>{}</nova:name>", esc(display));
        let _ = writeln!(
            x,
            "        <nova:creationTime>2025-06-01 12:00:00</nova:creationTime>"
        );
        let id = if d.flavor_id {
            format!(" id=\"{}\"", f.id)
        } else {
            String::new()
        };
        let _ = writeln!(x, "        <nova:flavor name=\"{}\"{id}>", f.name);
        let _ = writeln!(x, "          <nova:memory>{}</nova:memory>", f.ram);
        let _ = writeln!(x, "          <nova:disk>{}</nova:disk>", f.disk);
        let _ = writeln!(x, "          <nova:swap>{}</nova:swap>", f.swap);
        let _ = writeln!(
            x,
            "          <nova:ephemeral>{}</nova:ephemeral>",
            f.ephemeral
        );
        let _ = writeln!(x, "          <nova:vcpus>{}</nova:vcpus>", f.vcpus);
        let _ = writeln!(x, "        </nova:flavor>");
        let (img, distro, fmt) = &d.image;
        if d.image_meta {
            let _ = writeln!(x, "        <nova:image uuid=\"{img}\">");
            let _ = writeln!(
                x,
                "          <nova:containerFormat>bare</nova:containerFormat>"
            );
            let _ = writeln!(x, "          <nova:diskFormat>{fmt}</nova:diskFormat>");
            let _ = writeln!(
                x,
                "          <nova:minDisk>{}</nova:minDisk>",
                f.disk.min(10)
            );
            let _ = writeln!(x, "          <nova:minRam>0</nova:minRam>");
            let _ = writeln!(x, "          <nova:properties>");
            let _ = writeln!(
                x,
                "            <nova:property name=\"os_distro\">{distro}</nova:property>"
            );
            let _ = writeln!(
                x,
                "            <nova:property name=\"os_type\">linux</nova:property>"
            );
            let _ = writeln!(x, "          </nova:properties>");
            let _ = writeln!(x, "        </nova:image>");
        }
        let _ = writeln!(x, "        <nova:owner>");
        let _ = writeln!(
            x,
            "          <nova:user uuid=\"{}\">{}</nova:user>",
            d.user.1, d.user.0
        );
        let _ = writeln!(
            x,
            "          <nova:project uuid=\"{}\">{}</nova:project>",
            d.project.1, d.project.0
        );
        let _ = writeln!(x, "        </nova:owner>");
        let _ = writeln!(x, "        <nova:root type=\"image\" uuid=\"{img}\"/>");
        let _ = writeln!(x, "      </nova:instance>");
        let _ = writeln!(x, "    </metadata>");
    }
    let _ = writeln!(x, "    <memory unit='KiB'>{}</memory>", f.ram * 1024);
    let _ = writeln!(
        x,
        "    <currentMemory unit='KiB'>{}</currentMemory>",
        f.ram * 1024
    );
    let _ = writeln!(x, "    <vcpu placement='static'>{}</vcpu>", f.vcpus);
    let _ = writeln!(x, "    <os>\n      <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>\n      <boot dev='hd'/>\n    </os>");
    let _ = writeln!(x, "    <devices>");
    let dir = format!("/var/lib/nova/instances/{}", d.uuid);
    for (dev, file) in d.disks().iter().zip([
        "disk",
        if f.ephemeral > 0 {
            "disk.eph0"
        } else {
            "disk.swap"
        },
    ]) {
        let _ = writeln!(x, "      <disk type='file' device='disk'>");
        let _ = writeln!(x, "        <driver name='qemu' type='qcow2' cache='none'/>");
        let _ = writeln!(x, "        <source file='{dir}/{file}'/>");
        let _ = writeln!(x, "        <target dev='{dev}' bus='virtio'/>");
        let _ = writeln!(x, "      </disk>");
    }
    for ((mac, port), tap) in d.interfaces.iter().zip(d.taps()) {
        let _ = writeln!(x, "      <interface type='bridge'>");
        let _ = writeln!(x, "        <mac address='{mac}'/>");
        let _ = writeln!(x, "        <source bridge='br-int'/>");
        let _ = writeln!(x, "        <virtualport type='openvswitch'>");
        let _ = writeln!(x, "          <parameters interfaceid='{port}'/>");
        let _ = writeln!(x, "        </virtualport>");
        let _ = writeln!(x, "        <target dev='{tap}'/>");
        let _ = writeln!(x, "        <model type='virtio'/>");
        let _ = writeln!(x, "      </interface>");
    }
    let _ = writeln!(x, "      <memballoon model='virtio'/>");
    let _ = writeln!(x, "    </devices>");
    if let Some(rs) = d.runstate {
        let _ = writeln!(x, "    <test:runstate>{rs}</test:runstate>");
    }
    x.push_str("  </domain>\n");
    x
}

/// The domains of a node, deterministic for the spec.
pub fn domains(spec: &NodeSpec) -> Vec<DomainSpec> {
    let mut rng = Rng::new(spec.seed);
    let users: Vec<(String, String)> = USERS.iter().map(|u| (u.to_string(), rng.hex32())).collect();
    let projects: Vec<(String, String)> = PROJECTS
        .iter()
        .map(|p| (p.to_string(), rng.hex32()))
        .collect();
    let total_weight: u64 = FLAVOR_WEIGHTS.iter().sum();
    let mut out = Vec::with_capacity(spec.n + spec.non_nova);
    for i in 0..spec.n + spec.non_nova {
        let uuid = rng.uuid4();
        let role = ROLES[rng.below(ROLES.len() as u64) as usize];
        let mut pick = rng.below(total_weight);
        let mut flavor = FLAVORS[0];
        for (f, w) in FLAVORS.iter().zip(FLAVOR_WEIGHTS) {
            if pick < w {
                flavor = *f;
                break;
            }
            pick -= w;
        }
        let user = users[rng.below(users.len() as u64) as usize].clone();
        let project = projects[rng.below(projects.len() as u64) as usize].clone();
        let (img, distro, fmt) = IMAGES[rng.below(IMAGES.len() as u64) as usize];
        let n_if = if rng.below(10) < 3 { 2 } else { 1 };
        let interfaces = (0..n_if)
            .map(|_| {
                let mac = format!(
                    "fa:16:3e:{:02x}:{:02x}:{:02x}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                );
                (mac, rng.uuid4())
            })
            .collect();
        let nova = i < spec.n;
        let shutoff = nova && i >= spec.n - spec.shutoff.min(spec.n);
        out.push(DomainSpec {
            name: if nova {
                format!("instance-{:08x}", 0x100 + i)
            } else {
                format!("plain-vm-{i}")
            },
            uuid,
            display_name: nova.then(|| format!("{role}-{i}")),
            flavor,
            flavor_id: spec.flavor_id,
            user,
            project,
            image: (img.to_string(), distro.to_string(), fmt.to_string()),
            image_meta: spec.image_meta,
            interfaces,
            runstate: shutoff.then_some(5),
        });
    }
    out
}

/// A whole node file for the given domains.
pub fn node_xml(domains: &[DomainSpec]) -> String {
    let mut x = String::with_capacity(256 + domains.len() * 2500);
    x.push_str("<node>\n  <cpu>\n    <nodes>2</nodes><sockets>2</sockets><cores>16</cores><threads>2</threads>\n");
    x.push_str("    <active>128</active><mhz>2600</mhz><model>x86_64</model>\n  </cpu>\n");
    x.push_str("  <memory>1073741824</memory>\n");
    for d in domains {
        x.push_str(&domain_xml(d));
    }
    x.push_str("</node>\n");
    x
}

/// Generate the node for `spec`.
pub fn generate(spec: &NodeSpec) -> String {
    node_xml(&domains(spec))
}

/// Write the node for `spec` to `path`; returns its domains.
pub fn write(spec: &NodeSpec, path: &Path) -> std::io::Result<Vec<DomainSpec>> {
    let doms = domains(spec);
    std::fs::write(path, node_xml(&doms))?;
    Ok(doms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let spec = NodeSpec {
            n: 20,
            shutoff: 3,
            non_nova: 2,
            image_meta: true,
            ..Default::default()
        };
        assert_eq!(generate(&spec), generate(&spec));
        let d = domains(&spec);
        assert_eq!(d.len(), 22);
        assert_eq!(d.iter().filter(|d| d.runstate == Some(5)).count(), 3);
        assert!(d[19].runstate.is_some() && d[16].runstate.is_none());
        assert!(d[20].display_name.is_none());
        let other = generate(&NodeSpec {
            seed: 7,
            ..spec.clone()
        });
        assert_ne!(generate(&spec), other);
        let uuid = &d[0].uuid;
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}

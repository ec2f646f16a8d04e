//! Reading a libvirt domain XML once: Nova's instance metadata (as Ceilometer's
//! `discover_libvirt_polling` does, §5.2), the OS type, and the devices the inspector
//! polls (disks with a source, interfaces with a target and a MAC, §7.4).
//!
//! Element names inside the Nova metadata are matched by local name, as Ceilometer does
//! on the namespace-stripped XML libvirt's metadata API returns.

use roxmltree::{Document, Node};

pub const NOVA_NS_1_1: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
pub const NOVA_NS_1_0: &str = "http://openstack.org/xmlns/libvirt/nova/1.0";

/// Nova's flavor, in the order Ceilometer builds its dict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// `flavor@id`, or (no Nova API here) the flavor name, as Ceilometer falls back to
    /// when the flavor cannot be looked up.
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub ram: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    /// `<extraSpecs>` (Nova ≥ 2025.2): name → text, in document order.
    pub extra_specs: Option<Vec<(String, Option<String>)>>,
}

/// What Nova wrote into the domain's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NovaInstance {
    /// `<name>`: the Nova display name.
    pub display_name: Option<String>,
    pub flavor: Flavor,
    pub user_id: String,
    pub project_id: String,
    /// `Some(id)` when the root disk is an image (`<root type="image" uuid=…>`); `None`
    /// for boot-from-volume.
    pub image: Option<Option<String>>,
    /// `<image>` (Nova ≥ 2025.2), string values in Ceilometer's key order.
    pub image_meta: Option<Vec<(String, String)>>,
    /// `os/type` text (e.g. `hvm`).
    pub os_type: Option<String>,
    /// `os/type@arch`.
    pub architecture: String,
}

/// The Nova side of a domain.
#[derive(Debug, Clone, PartialEq)]
pub enum NovaMeta {
    /// No element in either Nova namespace: not a Nova instance.
    Missing,
    /// Nova metadata that lacks an element or attribute Ceilometer needs, or holds a
    /// non-integer where a number belongs. The string says what.
    Broken(String),
    Instance(Box<NovaInstance>),
}

/// A vNIC as Ceilometer's `inspect_vnics` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// `target@dev` (the tap device).
    pub name: String,
    /// `mac@address`.
    pub mac: String,
    /// `filterref@filter`.
    pub fref: Option<String>,
    /// Lower-cased `filterref/parameter@name` → `@value`, then `interfaceid`, `bridge`.
    pub parameters: Vec<(String, Option<String>)>,
}

/// Everything read from one domain XML.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainXml {
    pub name: String,
    pub uuid: String,
    pub nova: NovaMeta,
    /// `devices/disk/target@dev` of disks with a `<source>`.
    pub disks: Vec<String>,
    pub interfaces: Vec<Interface>,
}

fn elem_children<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elem_children(n).find(|c| c.tag_name().name() == name)
}

fn path<'a, 'i>(n: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(n, |n, name| child(n, name))
}

fn text(n: Node<'_, '_>) -> Option<String> {
    n.text().map(str::to_string)
}

/// Parse a domain XML (`virDomainGetXMLDesc`). Only an XML syntax error is an `Err`.
pub fn parse_domain(xml: &str) -> Result<DomainXml, String> {
    let doc = Document::parse(xml).map_err(|e| format!("domain XML does not parse: {e}"))?;
    let root = doc.root_element();
    let name = child(root, "name").and_then(text).unwrap_or_default();
    let uuid = child(root, "uuid").and_then(text).unwrap_or_default();
    let nova = parse_nova(root);
    let (disks, interfaces) = match child(root, "devices") {
        Some(devices) => (parse_disks(devices), parse_interfaces(devices)),
        None => (Vec::new(), Vec::new()),
    };
    Ok(DomainXml {
        name,
        uuid,
        nova,
        disks,
        interfaces,
    })
}

fn nova_element<'a, 'i>(root: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    let metadata = child(root, "metadata")?;
    // Ceilometer asks libvirt for the 1.1 namespace first, then 1.0.
    [NOVA_NS_1_1, NOVA_NS_1_0]
        .iter()
        .find_map(|ns| elem_children(metadata).find(|c| c.tag_name().namespace() == Some(ns)))
}

fn parse_nova(root: Node<'_, '_>) -> NovaMeta {
    let Some(meta) = nova_element(root) else {
        return NovaMeta::Missing;
    };
    match parse_nova_instance(root, meta) {
        Ok(i) => NovaMeta::Instance(Box::new(i)),
        Err(why) => NovaMeta::Broken(why),
    }
}

fn required_attr(n: Node<'_, '_>, what: &str, attr: &str) -> Result<String, String> {
    n.attribute(attr)
        .map(str::to_string)
        .ok_or_else(|| format!("<{what}> has no {attr} attribute"))
}

fn flavor_int(flavor: Node<'_, '_>, name: &str) -> Result<i64, String> {
    match child(flavor, name) {
        None => Ok(0),
        Some(n) => {
            let t = n.text().unwrap_or("").trim();
            t.parse::<i64>()
                .map_err(|_| format!("<flavor><{name}> is {t:?}, not an integer"))
        }
    }
}

fn parse_nova_instance(root: Node<'_, '_>, meta: Node<'_, '_>) -> Result<NovaInstance, String> {
    let flavor_xml = child(meta, "flavor").ok_or("no <flavor> element")?;
    let owner = child(meta, "owner").ok_or("no <owner> element")?;
    let user = child(owner, "user").ok_or("no <owner><user> element")?;
    let project = child(owner, "project").ok_or("no <owner><project> element")?;
    let name = child(meta, "name").ok_or("no <name> element")?;
    let os_type = path(root, &["os", "type"]).ok_or("the domain has no <os><type> element")?;

    let user_id = required_attr(user, "owner><user", "uuid")?;
    let project_id = required_attr(project, "owner><project", "uuid")?;
    let flavor_name = required_attr(flavor_xml, "flavor", "name")?;
    let architecture = required_attr(os_type, "os><type", "arch")?;

    let flavor_id = flavor_xml
        .attribute("id")
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| flavor_name.clone());
    let extra_specs = child(flavor_xml, "extraSpecs").map(|specs| {
        elem_children(specs)
            .filter(|c| c.tag_name().name() == "extraSpec")
            .filter_map(|c| Some((c.attribute("name")?.to_string(), text(c))))
            .collect()
    });
    let flavor = Flavor {
        id: flavor_id,
        name: flavor_name,
        vcpus: flavor_int(flavor_xml, "vcpus")?,
        ram: flavor_int(flavor_xml, "memory")?,
        disk: flavor_int(flavor_xml, "disk")?,
        ephemeral: flavor_int(flavor_xml, "ephemeral")?,
        swap: flavor_int(flavor_xml, "swap")?,
        extra_specs,
    };

    let image = elem_children(meta)
        .find(|c| c.tag_name().name() == "root" && c.attribute("type") == Some("image"))
        .map(|r| r.attribute("uuid").map(str::to_string));

    let image_meta = child(meta, "image").map(|img| {
        let mut m: Vec<(String, String)> = Vec::new();
        if let Some(uuid) = img.attribute("uuid") {
            m.push(("base_image_ref".into(), uuid.into()));
        }
        for (key, elem) in [
            ("container_format", "containerFormat"),
            ("disk_format", "diskFormat"),
            ("min_disk", "minDisk"),
            ("min_ram", "minRam"),
        ] {
            if let Some(n) = child(img, elem) {
                m.push((key.into(), n.text().unwrap_or("").to_string()));
            }
        }
        if let Some(props) = child(img, "properties") {
            for p in elem_children(props).filter(|c| c.tag_name().name() == "property") {
                if let Some(pname) = p.attribute("name") {
                    let value = p.text().unwrap_or("").to_string();
                    match m.iter_mut().find(|(k, _)| k == pname) {
                        Some(slot) => slot.1 = value,
                        None => m.push((pname.to_string(), value)),
                    }
                }
            }
        }
        m
    });

    Ok(NovaInstance {
        display_name: text(name),
        flavor,
        user_id,
        project_id,
        image,
        image_meta,
        os_type: text(os_type),
        architecture,
    })
}

fn parse_disks(devices: Node<'_, '_>) -> Vec<String> {
    elem_children(devices)
        .filter(|d| d.tag_name().name() == "disk")
        .filter(|d| child(*d, "source").is_some())
        .filter_map(|d| child(d, "target")?.attribute("dev").map(str::to_string))
        .filter(|dev| !dev.is_empty())
        .collect()
}

fn parse_interfaces(devices: Node<'_, '_>) -> Vec<Interface> {
    let mut out = Vec::new();
    for iface in elem_children(devices).filter(|d| d.tag_name().name() == "interface") {
        let Some(name) = child(iface, "target").and_then(|t| t.attribute("dev")) else {
            continue;
        };
        let Some(mac) = child(iface, "mac").and_then(|m| m.attribute("address")) else {
            continue;
        };
        let filterref = child(iface, "filterref");
        let fref = filterref
            .and_then(|f| f.attribute("filter"))
            .map(str::to_string);
        let mut parameters: Vec<(String, Option<String>)> = Vec::new();
        let mut put =
            |k: String, v: Option<String>| match parameters.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => parameters.push((k, v)),
            };
        if let Some(f) = filterref {
            for p in elem_children(f).filter(|c| c.tag_name().name() == "parameter") {
                if let Some(pname) = p.attribute("name") {
                    put(
                        pname.to_lowercase(),
                        p.attribute("value").map(str::to_string),
                    );
                }
            }
        }
        let interfaceid = path(iface, &["virtualport", "parameters"])
            .and_then(|p| p.attribute("interfaceid"))
            .map(str::to_string);
        let bridge = child(iface, "source")
            .and_then(|s| s.attribute("bridge"))
            .map(str::to_string);
        put("interfaceid".into(), interfaceid);
        put("bridge".into(), bridge);
        out.push(Interface {
            name: name.to_string(),
            mac: mac.to_string(),
            fref,
            parameters,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = r#"<domain type='test'>
  <name>instance-00000001</name>
  <uuid>a75c2fa5-0000-4000-8000-000000000001</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>vm-1</nova:name>
      <nova:flavor name="m1.eph">
        <nova:memory>4096</nova:memory>
        <nova:disk>40</nova:disk>
        <nova:ephemeral>20</nova:ephemeral>
        <nova:vcpus>2</nova:vcpus>
        <nova:extraSpecs><nova:extraSpec name="hw:cpu_policy">dedicated</nova:extraSpec></nova:extraSpecs>
      </nova:flavor>
      <nova:image uuid="img-1">
        <nova:containerFormat>bare</nova:containerFormat>
        <nova:minDisk>10</nova:minDisk>
        <nova:properties><nova:property name="os_distro">ubuntu</nova:property></nova:properties>
      </nova:image>
      <nova:owner>
        <nova:user uuid="u1">alice</nova:user>
        <nova:project uuid="p1">demo</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="img-1"/>
    </nova:instance>
  </metadata>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/d'/><target dev='vda'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc'/></disk>
    <interface type='bridge'>
      <mac address='fa:16:3e:00:00:01'/>
      <source bridge='br-int'/>
      <target dev='tap1'/>
      <filterref filter='nova-instance-1'><parameter name='IP' value='10.0.0.5'/></filterref>
    </interface>
    <interface type='bridge'><mac address='fa:16:3e:00:00:02'/></interface>
  </devices>
</domain>"#;

    #[test]
    fn reads_nova_metadata_and_devices() {
        let d = parse_domain(DOMAIN).unwrap();
        assert_eq!(d.name, "instance-00000001");
        let NovaMeta::Instance(i) = d.nova else {
            panic!("{:?}", d.nova)
        };
        assert_eq!(i.display_name.as_deref(), Some("vm-1"));
        assert_eq!(i.flavor.id, "m1.eph", "no flavor id: the name stands in");
        assert_eq!(
            (i.flavor.disk, i.flavor.ephemeral, i.flavor.swap),
            (40, 20, 0)
        );
        assert_eq!(
            i.flavor.extra_specs,
            Some(vec![("hw:cpu_policy".into(), Some("dedicated".into()))])
        );
        assert_eq!(i.image, Some(Some("img-1".into())));
        assert_eq!(
            i.image_meta.unwrap(),
            vec![
                ("base_image_ref".to_string(), "img-1".to_string()),
                ("container_format".into(), "bare".into()),
                ("min_disk".into(), "10".into()),
                ("os_distro".into(), "ubuntu".into()),
            ]
        );
        assert_eq!(i.architecture, "x86_64");
        assert_eq!(d.disks, ["vda"], "a disk without <source> is not polled");
        assert_eq!(
            d.interfaces.len(),
            1,
            "an interface without target is skipped"
        );
        let nic = &d.interfaces[0];
        assert_eq!(nic.fref.as_deref(), Some("nova-instance-1"));
        assert_eq!(
            nic.parameters,
            vec![
                ("ip".to_string(), Some("10.0.0.5".to_string())),
                ("interfaceid".into(), None),
                ("bridge".into(), Some("br-int".into())),
            ]
        );
    }

    #[test]
    fn missing_attributes_and_elements_are_broken_not_fatal() {
        for (from, to, why) in [
            (r#"<nova:user uuid="u1">"#, "<nova:user>", "uuid"),
            (r#"<nova:flavor name="m1.eph">"#, "<nova:flavor>", "name"),
            ("<type arch='x86_64'>", "<type>", "arch"),
            ("<nova:name>vm-1</nova:name>", "", "<name>"),
            (
                "<nova:disk>40</nova:disk>",
                "<nova:disk>forty</nova:disk>",
                "integer",
            ),
        ] {
            let xml = DOMAIN.replace(from, to);
            match parse_domain(&xml).unwrap().nova {
                NovaMeta::Broken(msg) => assert!(msg.contains(why), "{msg}"),
                other => panic!("{from}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_namespaces_are_not_nova_and_1_0_is() {
        let other = DOMAIN.replace(NOVA_NS_1_1, "http://example.com/other");
        assert_eq!(parse_domain(&other).unwrap().nova, NovaMeta::Missing);
        let old = DOMAIN.replace(NOVA_NS_1_1, NOVA_NS_1_0);
        assert!(matches!(
            parse_domain(&old).unwrap().nova,
            NovaMeta::Instance(_)
        ));
    }
}

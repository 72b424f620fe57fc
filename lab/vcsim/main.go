// ofl-vcsim: the lab's vCenter simulator (govmomi's vcsim library, built in GOPATH mode).
//
// One simulator holds the whole vSphere estate of the lab (the municipality's datacenter and the
// shared organisation's), built from a JSON model that `overflyt lab up` generates from the plan.
// The same model is served on one HTTPS listener per vCenter of the plan, each with its own login.
// See lab/README.md for why one simulator stands in for two vCenters.
package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

type Listener struct {
	Name, Addr, User, Password string
}

type Datastore struct {
	Name       string
	CapacityGB int64 `json:"capacity_gb"`
}

type VM struct {
	Name, Host, Datastore, Folder, Power, IP, Tools string
	CPU                                             int32
	MemoryMB                                        int64   `json:"memory_mb"`
	DisksGB                                         []int64 `json:"disks_gb"`
	Portgroups                                      []string
}

type Datacenter struct {
	Name, Cluster, Switch string
	Hosts, Portgroups     []string
	Folders               []string
	Datastores            []Datastore
	VMs                   []VM `json:"vms"`
}

type Model struct {
	Listeners    []Listener
	Cert, Key    string
	DatastoreDir string `json:"datastore_dir"`
	Datacenters  []Datacenter
}

func must(err error, what string) {
	if err != nil {
		if f, ok := err.(task.Error); ok {
			log.Fatalf("ofl-vcsim: %s: %T %#v", what, f.Fault(), f.Fault())
		}
		log.Fatalf("ofl-vcsim: %s: %v", what, err)
	}
}

// wait(what)(obj.SomeTask(...)) waits for the task and returns its result; failures are fatal.
func wait(what string) func(*object.Task, error) types.AnyType {
	return func(task *object.Task, err error) types.AnyType {
		must(err, what)
		info, err := task.WaitForResult(context.Background(), nil)
		must(err, what)
		return info.Result
	}
}

// build creates one datacenter of the model through the vSphere API (in process).
func build(ctx context.Context, c *vim25.Client, m *Model, d Datacenter) {
	root := object.NewRootFolder(c)
	dc, err := root.CreateDatacenter(ctx, d.Name)
	must(err, "datacenter "+d.Name)
	folders, err := dc.Folders(ctx)
	must(err, "folders")

	cluster, err := folders.HostFolder.CreateCluster(ctx, d.Cluster, types.ClusterConfigSpecEx{})
	must(err, "cluster "+d.Cluster)
	hosts := map[string]*object.HostSystem{}
	for _, name := range d.Hosts {
		ref := wait("host " + name)(cluster.AddHost(ctx, types.HostConnectSpec{HostName: name}, true, nil, nil))
		hosts[name] = object.NewHostSystem(c, ref.(types.ManagedObjectReference))
		h := simulator.Map.Get(hosts[name].Reference()).(*simulator.HostSystem)
		h.Summary.Hardware.NumCpuCores, h.Summary.Hardware.NumCpuThreads = 32, 64
		h.Summary.Hardware.MemorySize = 768 << 30
		h.Hardware.CpuInfo.NumCpuCores, h.Hardware.CpuInfo.NumCpuThreads = 32, 64
		h.Hardware.MemorySize = 768 << 30
	}
	pool, err := cluster.ResourcePool(ctx)
	must(err, "pool")

	// Shared datastores: created on the first host, then mounted on every host of the cluster.
	dsRefs := map[string]types.ManagedObjectReference{}
	for _, spec := range d.Datastores {
		dir := filepath.Join(m.DatastoreDir, spec.Name)
		must(os.MkdirAll(dir, 0o700), "datastore dir")
		dss, err := hosts[d.Hosts[0]].ConfigManager().DatastoreSystem(ctx)
		must(err, "datastore system")
		obj, err := dss.CreateLocalDatastore(ctx, spec.Name, dir)
		must(err, "datastore "+spec.Name)
		ds := simulator.Map.Get(obj.Reference()).(*simulator.Datastore)
		ds.Summary.Capacity = spec.CapacityGB << 30
		ds.Summary.FreeSpace = ds.Summary.Capacity
		ds.Info.GetDatastoreInfo().FreeSpace = ds.Summary.Capacity
		for _, name := range d.Hosts[1:] {
			h := simulator.Map.Get(hosts[name].Reference()).(*simulator.HostSystem)
			sys := simulator.Map.Get(*h.ConfigManager.DatastoreSystem).(*simulator.HostDatastoreSystem)
			sys.Datastore = append(sys.Datastore, ds.Self)
			h.Datastore = append(h.Datastore, ds.Self)
			ds.Host = append(ds.Host, types.DatastoreHostMount{Key: h.Self, MountInfo: ds.Host[0].MountInfo})
		}
		dsRefs[spec.Name] = ds.Self
	}

	// One distributed switch per datacenter, every host a member, one portgroup per network.
	spec := types.DVSCreateSpec{ConfigSpec: &types.VMwareDVSConfigSpec{}}
	spec.ConfigSpec.GetDVSConfigSpec().Name = d.Switch
	ref := wait("switch " + d.Switch)(folders.NetworkFolder.CreateDVS(ctx, spec))
	dvs := object.NewDistributedVirtualSwitch(c, ref.(types.ManagedObjectReference))
	members := &types.DVSConfigSpec{}
	for _, name := range d.Hosts {
		members.Host = append(members.Host,
			types.DistributedVirtualSwitchHostMemberConfigSpec{Operation: "add", Host: hosts[name].Reference()})
	}
	wait("switch members " + d.Switch)(dvs.Reconfigure(ctx, members))
	backing := map[string]types.BaseVirtualDeviceBackingInfo{}
	for _, name := range d.Portgroups {
		wait("portgroup " + name)(dvs.AddPortgroup(ctx, []types.DVPortgroupConfigSpec{{Name: name, Type: "earlyBinding", NumPorts: 128}}))
		net := simulator.Map.Get(folders.NetworkFolder.Reference()).(*simulator.Folder)
		pg := simulator.Map.FindByName(name, net.ChildEntity)
		backing[name], err = object.NewDistributedVirtualPortgroup(c, pg.Reference()).EthernetCardBackingInfo(ctx)
		must(err, "portgroup "+name)
	}

	vmFolders := map[string]*object.Folder{"": folders.VmFolder}
	for _, p := range d.Folders {
		parent := folders.VmFolder
		for i, part := range strings.Split(p, "/") {
			key := strings.Join(strings.Split(p, "/")[:i+1], "/")
			if f, ok := vmFolders[key]; ok {
				parent = f
				continue
			}
			f, err := parent.CreateFolder(ctx, part)
			must(err, "folder "+key)
			vmFolders[key], parent = f, f
		}
	}

	for _, v := range d.VMs {
		// vCenter stores a name escaped ("/" as %2f, "%" as %25, "\\" as %5c) and so do its VM's
		// files; vcsim keeps what it is given, so the launcher escapes as vCenter would.
		stored := vsphereName(v.Name)
		config := types.VirtualMachineConfigSpec{
			Name: stored, NumCPUs: v.CPU, MemoryMB: v.MemoryMB,
			GuestId: string(types.VirtualMachineGuestOsIdentifierWindows9Server64Guest),
			Files:   &types.VirtualMachineFileInfo{VmPathName: "[" + v.Datastore + "]"},
		}
		var devices object.VirtualDeviceList
		scsi, err := devices.CreateSCSIController("pvscsi")
		must(err, "scsi")
		devices = append(devices, scsi)
		for i, gb := range v.DisksGB {
			file := fmt.Sprintf("[%s] %s/%s.vmdk", v.Datastore, stored, stored)
			if i > 0 {
				file = fmt.Sprintf("[%s] %s/%s_%d.vmdk", v.Datastore, stored, stored, i)
			}
			disk := devices.CreateDisk(scsi.(types.BaseVirtualController), dsRefs[v.Datastore], file)
			disk.CapacityInKB = gb << 20
			devices = append(devices, disk)
		}
		for _, pg := range v.Portgroups {
			nic, err := devices.CreateEthernetCard("vmxnet3", backing[pg])
			must(err, "nic")
			devices = append(devices, nic)
		}
		config.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
		must(err, "devices")
		res := wait("vm " + v.Name)(vmFolders[v.Folder].CreateVM(ctx, config, pool, hosts[v.Host]))
		vm := object.NewVirtualMachine(c, res.(types.ManagedObjectReference))
		if v.Power != "powered_off" {
			wait("power on " + v.Name)(vm.PowerOn(ctx))
		}
		if v.Power == "suspended" {
			wait("suspend " + v.Name)(vm.Suspend(ctx))
		}
		sim := simulator.Map.Get(vm.Reference()).(*simulator.VirtualMachine)
		if v.IP != "" {
			sim.Guest.IpAddress, sim.Summary.Guest.IpAddress = v.IP, v.IP
		}
		setTools(sim, v.Tools, v.Power == "powered_on")
	}
}

// setTools makes the VM report VMware Tools as the plan says (vcsim reports every VM's tools as
// not installed), the way a real vCenter reports them: status, running status and version status.
func setTools(vm *simulator.VirtualMachine, tools string, on bool) {
	status, running, version := types.VirtualMachineToolsStatusToolsNotInstalled, "guestToolsNotRunning", "guestToolsNotInstalled"
	switch tools {
	case "ok", "not_running":
		status, version = types.VirtualMachineToolsStatusToolsOk, "guestToolsCurrent"
	case "old":
		status, version = types.VirtualMachineToolsStatusToolsOld, "guestToolsNeedUpgrade"
	}
	if tools == "not_running" || !on {
		if status != types.VirtualMachineToolsStatusToolsNotInstalled {
			status = types.VirtualMachineToolsStatusToolsNotRunning
		}
	} else if tools != "not_installed" {
		running = "guestToolsRunning"
	}
	vm.Guest.ToolsStatus, vm.Summary.Guest.ToolsStatus = status, status
	vm.Guest.ToolsRunningStatus, vm.Summary.Guest.ToolsRunningStatus = running, running
	vm.Guest.ToolsVersionStatus2, vm.Summary.Guest.ToolsVersionStatus2 = version, version
}

// vsphereName is an entity name as vCenter stores it: "%", "/" and "\\" escaped as %25, %2f, %5c.
func vsphereName(name string) string {
	return strings.NewReplacer("%", "%25", "/", "%2f", "\\", "%5c").Replace(name)
}

// methodName returns the name of the first element inside the SOAP Body.
func methodName(body []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if start, ok := tok.(xml.StartElement); ok {
			if inBody {
				return start.Name.Local
			}
			inBody = start.Name.Local == "Body"
		}
	}
}

const envelope = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>`

// snapshotVM remembers which VM each snapshot belongs to, also after the snapshot is removed.
var snapshotVM sync.Map

var (
	snapshotRef    = regexp.MustCompile(`type="VirtualMachineSnapshot">([^<]+)<`)
	snapshotEntity = regexp.MustCompile(`<entity type="VirtualMachineSnapshot">([^<]+)</entity>`)
)

// fixSnapshotEntity: govmomi 0.24 gives snapshot tasks a snapshot as TaskInfo.entity, which
// must be a ManagedEntity (pyvmomi rejects the response); vCenter gives the VM, so do we.
func fixSnapshotEntity(body []byte) []byte {
	for _, m := range snapshotRef.FindAllSubmatch(body, -1) {
		ref := types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: string(m[1])}
		if snap, ok := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot); ok {
			snapshotVM.Store(string(m[1]), snap.Vm.Value)
		}
	}
	return snapshotEntity.ReplaceAllFunc(body, func(e []byte) []byte {
		if vm, ok := snapshotVM.Load(string(snapshotEntity.FindSubmatch(e)[1])); ok {
			return []byte(`<entity type="VirtualMachine">` + vm.(string) + `</entity>`)
		}
		return nil
	})
}

// relocation is what fixRelocation and logRelocation need of a RelocateVM_Task request.
type relocation struct {
	VM        string `xml:"Body>RelocateVM_Task>_this"`
	Datastore string `xml:"Body>RelocateVM_Task>spec>datastore"`
	Host      string `xml:"Body>RelocateVM_Task>spec>host"`
	Folder    string `xml:"Body>RelocateVM_Task>spec>folder"`
	Pool      string `xml:"Body>RelocateVM_Task>spec>pool"`
	Changes   []struct {
		Key          int32  `xml:"device>key"`
		PortgroupKey string `xml:"device>backing>port>portgroupKey"`
		SwitchUuid   string `xml:"device>backing>port>switchUuid"`
		Network      string `xml:"device>backing>network"`
		DeviceName   string `xml:"device>backing>deviceName"`
	} `xml:"Body>RelocateVM_Task>spec>deviceChange"`
	Service *serviceLocator `xml:"Body>RelocateVM_Task>spec>service"`
}

// serviceLocator is a RelocateSpec's ServiceLocator: the vCenter a cross-vCenter vMotion goes to,
// and how to log in there (ServiceLocatorNamePassword).
type serviceLocator struct {
	InstanceUuid  string `xml:"instanceUuid"`
	Url           string `xml:"url"`
	SslThumbprint string `xml:"sslThumbprint"`
	Credential    struct {
		Type     string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
		Username string `xml:"username"`
		Password string `xml:"password"`
	} `xml:"credential"`
}

// listeners are the lab's vCenters, to tell which one a ServiceLocator names.
var listeners []Listener

// instanceUuid is the instance UUID listener l reports (ServiceContent.about.instanceUuid): each
// of the lab's vCenters its own, as two real vCenters have, derived from its name.
func instanceUuid(l Listener) string {
	sum := sha1.Sum([]byte("ofl-vcsim " + l.Name))
	sum[6], sum[8] = sum[6]&0x0f|0x50, sum[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

var aboutUuid = regexp.MustCompile(`<instanceUuid>[^<]*</instanceUuid>`)

// describeLocator is the ServiceLocator as the log shows it: every field but the password, which
// is only said to be right or wrong for the vCenter named (never its value nor its length).
func describeLocator(s *serviceLocator) string {
	if s == nil {
		return "service=none"
	}
	password := "absent"
	c := s.Credential
	if c.Password != "" {
		password = "redacted(no vCenter has it)"
		for _, l := range listeners {
			if s.Url == "https://"+l.Addr || s.Url == "https://"+l.Addr+"/sdk" {
				password = "redacted(wrong for " + l.Name + ")"
				if c.Username == l.User && c.Password == l.Password {
					password = "redacted(valid for " + l.Name + ")"
				}
			}
		}
	}
	target := "?"
	for _, l := range listeners {
		if s.InstanceUuid == instanceUuid(l) {
			target = l.Name
		}
	}
	return fmt.Sprintf("service: url=%s instanceUuid=%s (%s) sslThumbprint=%s credential=%s username=%s password=%s",
		s.Url, s.InstanceUuid, target, s.SslThumbprint, c.Type, c.Username, password)
}

var datastorePrefix = regexp.MustCompile(`^\[[^\]]*\]`)

// fixRelocation: govmomi 0.24's RelocateVM_Task ignores spec.deviceChange and leaves the VM's
// files and disks on the old datastore (so the VM can no longer be reconfigured once in another
// datacenter); vCenter moves both, so do we, after the simulator's own (synchronous) task.
func fixRelocation(body []byte) {
	var req relocation
	if xml.Unmarshal(body, &req) != nil || req.VM == "" {
		return
	}
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: req.VM}).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var ds *simulator.Datastore
	if req.Datastore != "" {
		ds, _ = simulator.Map.Get(types.ManagedObjectReference{Type: "Datastore", Value: req.Datastore}).(*simulator.Datastore)
	}
	simulator.Map.WithLock(vm, func() {
		networks := []types.ManagedObjectReference{}
		for _, d := range vm.Config.Hardware.Device {
			if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
				card := nic.GetVirtualEthernetCard()
				for _, c := range req.Changes {
					if c.Key != card.Key {
						continue
					}
					if c.PortgroupKey != "" {
						card.Backing = &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
							Port: types.DistributedVirtualSwitchPortConnection{PortgroupKey: c.PortgroupKey, SwitchUuid: c.SwitchUuid}}
					} else if c.Network != "" {
						ref := types.ManagedObjectReference{Type: "Network", Value: c.Network}
						card.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
							VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: c.DeviceName}, Network: &ref}
					}
				}
				switch b := card.Backing.(type) {
				case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
					networks = append(networks, types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey})
				case *types.VirtualEthernetCardNetworkBackingInfo:
					if b.Network != nil {
						networks = append(networks, *b.Network)
					}
				}
			}
			if disk, ok := d.(*types.VirtualDisk); ok && ds != nil {
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					info := b.GetVirtualDeviceFileBackingInfo()
					info.FileName = datastorePrefix.ReplaceAllString(info.FileName, "["+ds.Name+"]")
					info.Datastore = &ds.Self
				}
			}
		}
		vm.Network = networks
		if ds != nil {
			vm.Config.Files.VmPathName = datastorePrefix.ReplaceAllString(vm.Config.Files.VmPathName, "["+ds.Name+"]")
			vm.Summary.Config.VmPathName = vm.Config.Files.VmPathName
			if vm.LayoutEx != nil {
				for i := range vm.LayoutEx.File {
					vm.LayoutEx.File[i].Name = datastorePrefix.ReplaceAllString(vm.LayoutEx.File[i].Name, "["+ds.Name+"]")
				}
			}
		}
	})
}

// logRelocation writes one line per RelocateVM_Task request to the simulator's log, so tests can
// count the moves the peer saw: "relocate vm=<moid> name=<name> host=... datastore=... folder=...",
// and a second line with the spec's ServiceLocator ("relocate-service ...", describeLocator).
func logRelocation(body []byte, l Listener, code int) {
	var req relocation
	if xml.Unmarshal(body, &req) != nil {
		log.Printf("ofl-vcsim: relocate vm=? (unparsable request) listener=%s status=%d", l.Name, code)
		return
	}
	name := "?"
	if vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: req.VM}).(*simulator.VirtualMachine); ok {
		simulator.Map.WithLock(vm, func() { name = vm.Name })
	}
	log.Printf("ofl-vcsim: relocate vm=%s name=%s host=%s datastore=%s folder=%s pool=%s listener=%s status=%d",
		req.VM, name, req.Host, req.Datastore, req.Folder, req.Pool, l.Name, code)
	log.Printf("ofl-vcsim: relocate-service vm=%s name=%s listener=%s %s", req.VM, name, l.Name, describeLocator(req.Service))
}

// mutators are the synchronous methods that change the inventory; with every *_Task method they
// are logged as "task method=<name>", so a test can prove a dry run asked the peer for no change.
var mutators = map[string]bool{
	"CreateFolder": true, "CreateDatacenter": true, "CreateClusterEx": true, "UnregisterVM": true,
	"UpdateOptions": true, "SetCustomValue": true, "MarkAsTemplate": true, "MarkAsVirtualMachine": true,
}

// guard wraps the simulator's handler for one listener:
//   - Login only succeeds with that listener's user and password (vcsim itself accepts anyone);
//   - a Fetch that panics (govmomi 0.24 panics when the property is unset, e.g. a VM's snapshot)
//     is answered with an empty FetchResponse, which pyvmomi reads as None;
//   - snapshot tasks name their VM as entity (fixSnapshotEntity);
//   - a relocation also moves the VM's NICs and files (fixRelocation) and is logged (logRelocation);
//   - every task and synchronous change is logged as "task method=<name>" (mutators);
//   - the ServiceContent names the listener's own instance UUID (instanceUuid);
//   - with a simulated transfer rate set (transfer.json), a relocation takes time (slowRelocation).
func guard(next http.Handler, l Listener) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method := methodName(body)
		if method == "Login" {
			var req struct {
				User     string `xml:"Body>Login>userName"`
				Password string `xml:"Body>Login>password"`
			}
			if xml.Unmarshal(body, &req) != nil || req.User != l.User || req.Password != l.Password {
				w.Header().Set("Content-Type", "text/xml; charset=utf-8")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, envelope, `<soapenv:Fault><faultcode>ServerFaultCode</faultcode>`+
					`<faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>`+
					`<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail>`+
					`</soapenv:Fault>`)
				return
			}
		}
		if method == "RelocateVM_Task" {
			if t := readTransfer(); t.RateMBps > 0 && slowRelocation(w, r, body, next, l, t) {
				return
			}
		}
		if method == "CancelTask" && cancelRelocation(body, l) {
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			fmt.Fprintf(w, envelope, `<CancelTaskResponse xmlns="urn:vim25"></CancelTaskResponse>`)
			return
		}
		rec := httptest.NewRecorder()
		if !serveRecovering(next, rec, r) {
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			if method == "Fetch" {
				fmt.Fprintf(w, envelope, `<FetchResponse xmlns="urn:vim25"></FetchResponse>`)
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, envelope, `<soapenv:Fault><faultcode>ServerFaultCode</faultcode>`+
				`<faultstring>simulator panic in `+method+`</faultstring></soapenv:Fault>`)
			return
		}
		if strings.HasSuffix(method, "_Task") || mutators[method] {
			log.Printf("ofl-vcsim: task method=%s listener=%s status=%d", method, l.Name, rec.Code)
		}
		if method == "RelocateVM_Task" {
			logRelocation(body, l, rec.Code)
			if rec.Code == http.StatusOK {
				fixRelocation(body)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		out := rec.Body.Bytes()
		if method == "RetrieveServiceContent" {
			out = aboutUuid.ReplaceAll(out, []byte("<instanceUuid>"+instanceUuid(l)+"</instanceUuid>"))
		}
		_, _ = w.Write(fixSnapshotEntity(out))
	})
}

func serveRecovering(next http.Handler, w http.ResponseWriter, r *http.Request) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	next.ServeHTTP(w, r)
	return true
}

func main() {
	modelPath := flag.String("model", "", "JSON model written by `overflyt lab up`")
	flag.Parse()
	raw, err := os.ReadFile(*modelPath)
	must(err, "model")
	var m Model
	must(json.Unmarshal(raw, &m), "model "+*modelPath)

	vpx := simulator.VPX()
	vpx.Datacenter, vpx.Portgroup, vpx.Host, vpx.Cluster, vpx.ClusterHost = 0, 0, 0, 0, 0
	vpx.Datastore, vpx.Machine = 0, 0
	must(vpx.Create(), "simulator")
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, vpx.Service)
	must(err, "client")
	inproc = client
	transferFile = filepath.Join(filepath.Dir(*modelPath), "transfer.json")
	for _, d := range m.Datacenters {
		build(ctx, client, &m, d)
	}

	// Registers the SDK handlers on vpx.Service.ServeMux; its own ephemeral listener is closed
	// at once, the lab's listeners below serve that mux.
	srv := vpx.Service.NewServer()
	srv.Close()
	cert, err := tls.LoadX509KeyPair(m.Cert, m.Key)
	must(err, "TLS certificate")
	listeners = m.Listeners
	errs := make(chan error, len(m.Listeners))
	for _, l := range m.Listeners {
		ln, err := net.Listen("tcp", l.Addr)
		must(err, "listen "+l.Addr)
		hs := &http.Server{
			Handler:   guard(vpx.Service.ServeMux, l),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ErrorLog:  log.New(io.Discard, "", 0),
		}
		go func(l Listener) { errs <- hs.ServeTLS(ln, "", "") }(l)
		log.Printf("ofl-vcsim: %s serving https://%s/sdk", l.Name, l.Addr)
	}
	simulator.Map.SessionManager().ServiceHostName = m.Listeners[0].Addr

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Printf("ofl-vcsim: %s, exiting", s)
	case err := <-errs:
		log.Fatalf("ofl-vcsim: %v", err)
	}
}

// -- simulated transfer time ------------------------------------------------------------------------

// transfer is the lab's simulated transfer (lab/README.md), read from transferFile at every
// RelocateVM_Task, so `overflyt lab transfer` changes it without restarting the simulator. A rate of
// 0 (or no file) is govmomi's own relocation: done before the call returns.
type transfer struct {
	RateMBps float64            `json:"rate_mb_per_s"`
	Jitter   float64            `json:"jitter"`
	Seed     uint64             `json:"seed"`
	Seconds  map[string]float64 `json:"seconds"` // VM name -> its transfer time, whatever its size
}

var (
	transferFile string
	inproc       *vim25.Client // the simulator's in-process client (the session vcsim uses internally)
	relocations  sync.Map      // VM moref -> struct{}: a simulated transfer of that VM is under way
	cancels      sync.Map      // task moref -> chan struct{}: closed by CancelTask while the transfer runs
)

func readTransfer() transfer {
	var t transfer
	raw, err := os.ReadFile(transferFile)
	if err != nil || json.Unmarshal(raw, &t) != nil || t.RateMBps < 0 {
		return transfer{}
	}
	return t
}

// transferSeconds is how long moving vm takes at t's rate: its memory always (vMotion copies it),
// and its disks when the relocation changes its datastore, each MB at t.RateMBps; times a factor
// 1±t.Jitter drawn from the VM's name and t.Seed, so the same VM takes the same time every run; a
// VM named in t.Seconds takes that long instead.
func transferSeconds(vm *simulator.VirtualMachine, spec types.VirtualMachineRelocateSpec, t transfer) float64 {
	var mb float64
	var name string
	simulator.Map.WithLock(vm, func() {
		name = vm.Name
		mb = float64(vm.Config.Hardware.MemoryMB)
		moves := spec.Datastore != nil
		if moves && len(vm.Datastore) == 1 && vm.Datastore[0] == *spec.Datastore {
			moves = false
		}
		if moves {
			for _, d := range vm.Config.Hardware.Device {
				if disk, ok := d.(*types.VirtualDisk); ok {
					mb += float64(disk.CapacityInKB) / 1024
				}
			}
		}
	})
	if seconds, ok := t.Seconds[name]; ok {
		return seconds
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", t.Seed, name)
	u := float64(h.Sum64()%10000) / 9999 // 0..1
	return mb / t.RateMBps * (1 + t.Jitter*(2*u-1))
}

// slowRelocation answers a RelocateVM_Task at once with a task that runs for the VM's transfer time
// (transferSeconds) and only then relocates it (govmomi's own relocation, through the in-process
// client, and fixRelocation), as vCenter's task runs while the VM's data is copied. Until then the
// VM is where it was. The caller's session is checked first (a CurrentTime call with the request's
// cookie), so an unauthenticated request gets vcsim's own fault. False: not handled here (the
// request is not one this can read, names no VM, or the session is not valid), serve it as usual.
func slowRelocation(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler, l Listener, t transfer) bool {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	req, ok := m.Body.(*types.RelocateVM_Task)
	if !ok {
		return false
	}
	vm, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	probe := fmt.Sprintf(envelope, `<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>`)
	pr := r.Clone(r.Context())
	pr.Body = io.NopCloser(strings.NewReader(probe))
	pr.ContentLength = int64(len(probe))
	rec := httptest.NewRecorder()
	if !serveRecovering(next, rec, pr) || rec.Code != http.StatusOK {
		return false
	}
	var name string
	simulator.Map.WithLock(vm, func() { name = vm.Name })
	if _, busy := relocations.LoadOrStore(req.This.Value, struct{}{}); busy {
		// vCenter refuses a second operation on a VM while a task of it runs
		log.Printf("ofl-vcsim: relocate vm=%s name=%s refused: a relocation of it is under way listener=%s status=500", req.This.Value, name, l.Name)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, envelope, `<soapenv:Fault><faultcode>ServerFaultCode</faultcode>`+
			`<faultstring>Another task is already in progress.</faultstring>`+
			`<detail><TaskInProgressFault xmlns="urn:vim25" xsi:type="TaskInProgress"><task type="Task">`+
			`</task></TaskInProgressFault></detail></soapenv:Fault>`)
		return true
	}
	seconds := transferSeconds(vm, req.Spec, t)
	logRelocation(body, l, http.StatusOK)
	log.Printf("ofl-vcsim: task method=RelocateVM_Task listener=%s status=200", l.Name)
	cancel := make(chan struct{})
	var taskID string
	task := simulator.CreateTask(req.This, "relocateVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		defer relocations.Delete(req.This.Value)
		defer cancels.Delete(taskID)
		select {
		case <-time.After(time.Duration(seconds * float64(time.Second))):
		case <-cancel:
			log.Printf("ofl-vcsim: relocate-done vm=%s name=%s seconds=%.1f canceled", req.This.Value, name, seconds)
			return nil, &types.RequestCanceled{}
		}
		cancels.Delete(taskID) // too late to cancel from here on, as in vCenter at the switch-over
		ctx := context.Background()
		inner, err := object.NewVirtualMachine(inproc, req.This).Relocate(ctx, req.Spec, req.Priority)
		if err == nil {
			_, err = inner.WaitForResult(ctx, nil)
		}
		if err != nil {
			log.Printf("ofl-vcsim: relocate-done vm=%s name=%s seconds=%.1f error=%v", req.This.Value, name, seconds, err)
			if f, ok := err.(task.Error); ok {
				return nil, f.Fault()
			}
			return nil, &types.SystemError{Reason: err.Error()}
		}
		fixRelocation(body)
		log.Printf("ofl-vcsim: relocate-done vm=%s name=%s seconds=%.1f", req.This.Value, name, seconds)
		return nil, nil
	})
	taskID = task.Self.Value
	cancels.Store(taskID, cancel)
	go task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, envelope, `<RelocateVM_TaskResponse xmlns="urn:vim25"><returnval type="Task">`+task.Self.Value+`</returnval></RelocateVM_TaskResponse>`)
	return true
}

// cancelRelocation: CancelTask of a simulated transfer under way ends its task with RequestCanceled,
// the VM left where it was (vCenter cancels a vMotion the same way, until its switch-over). False:
// not such a task (vcsim answers as it does: its tasks cannot be cancelled).
func cancelRelocation(body []byte, l Listener) bool {
	var req struct {
		Task string `xml:"Body>CancelTask>_this"`
	}
	if xml.Unmarshal(body, &req) != nil {
		return false
	}
	c, ok := cancels.LoadAndDelete(req.Task)
	if !ok {
		return false
	}
	close(c.(chan struct{}))
	log.Printf("ofl-vcsim: task method=CancelTask task=%s listener=%s status=200", req.Task, l.Name)
	return true
}

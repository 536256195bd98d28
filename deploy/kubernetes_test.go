package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "kubernetes"

// k8sTypes maps apiVersion/kind to the Go type a manifest must decode into.
var k8sTypes = map[string]func() any{
	"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":                  func() any { return &networkingv1.Ingress{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &types.Kustomization{} },
}

// manifests is the Kubernetes base, decoded strictly: each file one object of
// a known type, every field known to that type.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	ingresses   []*networkingv1.Ingress
}

func decodeManifest(t *testing.T, path string) any {
	t.Helper()
	data := readFile(t, path)
	if strings.Contains(string(data), "\n---") {
		t.Fatalf("%s: one object per file, please", path)
	}
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	newObj, ok := k8sTypes[meta.APIVersion+"/"+meta.Kind]
	if !ok {
		t.Fatalf("%s: apiVersion %q kind %q is none of the expected types", path, meta.APIVersion, meta.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: strict decoding as %s: %v", path, meta.Kind, err)
	}
	return obj
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
	}
	for _, res := range kustomization(t).Resources {
		switch o := decodeManifest(t, filepath.Join(k8sDir, res)).(type) {
		case *appsv1.Deployment:
			m.deployments[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, o)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *networkingv1.Ingress:
			m.ingresses = append(m.ingresses, o)
		default:
			t.Fatalf("%s: unexpected %T in resources", res, o)
		}
	}
	return m
}

func kustomization(t *testing.T) *types.Kustomization {
	t.Helper()
	k, ok := decodeManifest(t, filepath.Join(k8sDir, "kustomization.yaml")).(*types.Kustomization)
	if !ok {
		t.Fatal("kustomization.yaml is not a Kustomization")
	}
	return k
}

// gateway returns the gateway's Deployment, its container and its config.
func (m manifests) gateway(t *testing.T) (*appsv1.Deployment, corev1.Container, altairConfig) {
	t.Helper()
	d := m.deployments["altair"]
	if d == nil {
		t.Fatal("no Deployment named altair")
	}
	var c *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "altair" {
			c = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("Deployment altair has no container named altair")
	}
	// The config is the ConfigMap mounted where the container's args point.
	var cfgPath string
	for i, a := range c.Args {
		if a == "-c" && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "run" || cfgPath == "" {
		t.Fatalf("container args = %q, want run -c FILE", c.Args)
	}
	for _, vm := range c.VolumeMounts {
		if filepath.Dir(cfgPath) != vm.MountPath {
			continue
		}
		if vm.SubPath != "" {
			t.Errorf("config mounted with subPath %q: ConfigMap updates would never reach the pod", vm.SubPath)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %q is not in the base", v.Name, v.ConfigMap.Name)
			}
			data, ok := cm.Data[filepath.Base(cfgPath)]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s", cm.Name, filepath.Base(cfgPath))
			}
			return d, *c, parseAltairConfig(t, []byte(data))
		}
	}
	t.Fatalf("%s is not mounted from a ConfigMap", cfgPath)
	return nil, corev1.Container{}, altairConfig{}
}

// portNumber resolves a probe's or a Service's target port against a
// container's ports.
func portNumber(t *testing.T, c corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	k := kustomization(t)
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("resource %s listed twice", r)
		}
		listed[r] = true
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name != "kustomization.yaml" && !listed[name] {
			t.Errorf("%s is not listed in kustomization.yaml resources", name)
		}
	}
	if len(files) < 9 {
		t.Errorf("found %d manifests in %s, want the 8 resources and kustomization.yaml", len(files), k8sDir)
	}
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	if len(m.deployments) != 2 || len(m.services) != 2 || len(m.configMaps) != 1 ||
		len(m.hpas) != 1 || len(m.pdbs) != 1 || len(m.ingresses) != 1 {
		t.Fatalf("base holds %d Deployments, %d Services, %d ConfigMaps, %d HPAs, %d PDBs, %d Ingresses; want 2, 2, 1, 1, 1, 1",
			len(m.deployments), len(m.services), len(m.configMaps), len(m.hpas), len(m.pdbs), len(m.ingresses))
	}
}

func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	if got, want := len(res.Resources()), len(kustomization(t).Resources); got != want {
		t.Errorf("kustomize build gave %d objects, want %d", got, want)
	}
	for _, r := range res.Resources() {
		if r.GetLabels()["app.kubernetes.io/part-of"] != "altair" {
			t.Errorf("%s %s has no app.kubernetes.io/part-of=altair label", r.GetKind(), r.GetName())
		}
		if r.GetKind() != "Deployment" || r.GetName() != "altair" {
			continue
		}
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(b, &d); err != nil {
			t.Fatalf("built Deployment: %v", err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "altair:dev" {
			t.Errorf("built image = %q, want altair:dev (from kustomization images)", img)
		}
	}
}

func TestDeploymentProbesAndPorts(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c, cfg := m.gateway(t)
	port := cfg.listenPort(t)
	if port != gatewayPort {
		t.Errorf("ConfigMap server.listen port = %d, want the default %d", port, gatewayPort)
	}
	if len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != port {
		t.Errorf("container ports = %+v, want one on %d (server.listen)", c.Ports, port)
	}
	tests := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/health"},
		{"readiness", c.ReadinessProbe, "/ready"},
	}
	for _, tt := range tests {
		if tt.probe == nil || tt.probe.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want an HTTP GET of %s", tt.name, tt.probe, tt.path)
			continue
		}
		if tt.probe.HTTPGet.Path != tt.path {
			t.Errorf("%s probe path = %q, want %q", tt.name, tt.probe.HTTPGet.Path, tt.path)
		}
		if got := portNumber(t, c, tt.probe.HTTPGet.Port); got != port {
			t.Errorf("%s probe port = %d, want %d", tt.name, got, port)
		}
	}
	a := d.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(port) || a["prometheus.io/path"] != cfg.metricsPath() {
		t.Errorf("scrape annotations = %v, want scrape true, port %d, path %s", a, port, cfg.metricsPath())
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %s, want 3", ptrString(d.Spec.Replicas))
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %v does not match its pods' labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
}

func TestDeploymentGracePeriodCoversDrain(t *testing.T) {
	t.Parallel()
	d, _, cfg := loadManifests(t).gateway(t)
	drain, shutdown := cfg.durations(t)
	if drain == 0 {
		t.Error("server.drain_delay is 0: pods would close their listener before endpoints stop sending")
	}
	need := int64((drain + shutdown).Seconds())
	g := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if g == nil {
		t.Fatal("terminationGracePeriodSeconds is not set (the default, 30s, is not derived from the config)")
	}
	if *g <= need || *g > need+30 {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than drain_delay + shutdown_timeout = %ds (and at most 30s more)", *g, need)
	}
}

func TestDeploymentEnvironment(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c, _ := m.gateway(t)
	honoured := honouredEnv(t)
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if !honoured[e.Name] {
			t.Errorf("env %s is not a variable the gateway reads (docs/configuration.md)", e.Name)
		}
		env[e.Name] = e
	}
	admin := env["ADMIN_TOKEN"]
	if admin.Value != "" || admin.ValueFrom == nil || admin.ValueFrom.SecretKeyRef == nil {
		t.Errorf("ADMIN_TOKEN = %+v, want a Secret reference, never a literal", admin)
	}
	redis := env["REDIS_ADDR"].Value
	host, port, _ := strings.Cut(redis, ":")
	svc := m.services[host]
	if svc == nil {
		t.Fatalf("REDIS_ADDR = %q: no Service %q in the base", redis, host)
	}
	if len(svc.Spec.Ports) != 1 || strconv.Itoa(int(svc.Spec.Ports[0].Port)) != port {
		t.Errorf("REDIS_ADDR port %s, Service %s ports %+v", port, host, svc.Spec.Ports)
	}
	rd := m.deployments[host]
	if rd == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(rd.Spec.Template.Labels)) {
		t.Fatalf("Service %s selects no pods of a Deployment %s", host, host)
	}
	if got := portNumber(t, rd.Spec.Template.Spec.Containers[0], svc.Spec.Ports[0].TargetPort); got != 6379 {
		t.Errorf("Service %s targets port %d, want Redis on 6379", host, got)
	}
}

func TestDeploymentsAreLockedDown(t *testing.T) {
	t.Parallel()
	for name, d := range loadManifests(t).deployments {
		pod := d.Spec.Template.Spec
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext %+v, want runAsNonRoot and a non-zero runAsUser", name, psc)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false: the pod needs no API access", name)
		}
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s/%s: no securityContext", name, c.Name)
				continue
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s/%s: readOnlyRootFilesystem is not true", name, c.Name)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s/%s: allowPrivilegeEscalation is not false", name, c.Name)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s/%s: capabilities %+v, want drop [ALL] and nothing added", name, c.Name, sc.Capabilities)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: resources %+v, want CPU and memory requests and a memory limit", name, c.Name, c.Resources)
			}
			if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s/%s: image %q is not pinned to a tag", name, c.Name, c.Image)
			}
		}
	}
	// The gateway runs as the image's user (deploy/docker/Dockerfile).
	d, _, _ := loadManifests(t).gateway(t)
	if u := d.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("altair runAsUser = %v, want 65532, the image's nonroot user", u)
	}
}

func TestServiceTargetsGateway(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c, cfg := m.gateway(t)
	svc := m.services["altair"]
	if svc == nil {
		t.Fatal("no Service named altair")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not match the gateway's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service ports = %+v, want one", svc.Spec.Ports)
	}
	p := svc.Spec.Ports[0]
	if got := portNumber(t, c, p.TargetPort); got != cfg.listenPort(t) {
		t.Errorf("Service targets port %d, want the gateway's %d", got, cfg.listenPort(t))
	}
	if p.Port != gatewayPort {
		t.Errorf("Service port = %d, want %d", p.Port, gatewayPort)
	}

	if len(m.ingresses) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(m.ingresses))
	}
	ing := m.ingresses[0]
	for _, r := range ing.Spec.Rules {
		for _, path := range r.HTTP.Paths {
			b := path.Backend.Service
			if b == nil || b.Name != svc.Name {
				t.Errorf("Ingress path %s goes to %+v, want Service %s", path.Path, b, svc.Name)
				continue
			}
			if b.Port.Name != p.Name && b.Port.Number != p.Port {
				t.Errorf("Ingress path %s goes to port %+v, not the Service's %s/%d", path.Path, b.Port, p.Name, p.Port)
			}
		}
	}
	if len(ing.Spec.Rules) == 0 || len(ing.Spec.TLS) == 0 {
		t.Errorf("Ingress has %d rules and %d TLS entries, want both", len(ing.Spec.Rules), len(ing.Spec.TLS))
	}
}

func TestAutoscalingAndDisruptionBudget(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c, _ := m.gateway(t)
	hpa := m.hpas[0]
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != d.Name {
		t.Errorf("HPA scales %+v, want Deployment %s", ref, d.Name)
	}
	if hpa.Spec.MinReplicas == nil {
		t.Fatal("HPA minReplicas is not set")
	}
	if *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 10 {
		t.Errorf("HPA replicas %d..%d, want 3..10", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	cpu := false
	for _, mt := range hpa.Spec.Metrics {
		if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU &&
			mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType && mt.Resource.Target.AverageUtilization != nil {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("HPA metrics %+v, want a CPU utilization target", hpa.Spec.Metrics)
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Error("the gateway has no CPU request: CPU utilization is relative to it")
	}

	pdb := m.pdbs[0]
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(2) {
		t.Errorf("PDB minAvailable = %v, want 2", pdb.Spec.MinAvailable)
	}
	if *hpa.Spec.MinReplicas <= pdb.Spec.MinAvailable.IntVal {
		t.Errorf("PDB minAvailable %d leaves no pod to evict at HPA minimum %d", pdb.Spec.MinAvailable.IntVal, *hpa.Spec.MinReplicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PDB selector %v (%v) does not match the gateway's pods %v", pdb.Spec.Selector, err, d.Spec.Template.Labels)
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

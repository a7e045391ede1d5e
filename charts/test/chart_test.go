package charttest

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// TestCIValues renders the defaults and every ci/*-values.yaml, lints each like `helm lint
// --strict`, strictly decodes every manifest and checks what must hold in every scenario.
func TestCIValues(t *testing.T) {
	cases := map[string]map[string]any{"chart defaults": nil}
	for _, f := range ciValueFiles(t) {
		cases[filepath.Base(f)] = valuesFile(t, f)
	}
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, m := range lintChart(vals) {
				t.Errorf("helm lint: %s", m)
			}
			r := render(t, vals)
			checkInvariants(t, r)
		})
	}
}

// checkInvariants holds for every supported combination of values.
func checkInvariants(t *testing.T, r *rendered) {
	t.Helper()
	d := r.deployment(t)
	pod := d.Spec.Template.Spec
	c := r.relay(t)

	// Every object carries the standard labels.
	for _, o := range r.objects {
		m, ok := o.(interface{ GetLabels() map[string]string })
		if !ok {
			continue
		}
		l := m.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "helm.sh/chart", "app.kubernetes.io/managed-by"} {
			if l[k] == "" {
				t.Errorf("%T lacks label %s", o, k)
			}
		}
	}

	// Pod security: non-root distroless user, no privilege, read-only root.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod runAsNonRoot not true: %+v", psc)
	} else {
		for what, got := range map[string]*int64{"runAsUser": psc.RunAsUser, "runAsGroup": psc.RunAsGroup, "fsGroup": psc.FSGroup} {
			if got == nil || *got != 65532 {
				t.Errorf("pod %s = %v, want 65532", what, got)
			}
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", psc.SeccompProfile)
		}
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Error("container has no securityContext")
	default:
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("capabilities = %+v, want drop [ALL]", sc.Capabilities)
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod automountServiceAccountToken is not false")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources not set: %+v", c.Resources)
	}

	// The queue directory: RELAY_DATA_DIR=/data on a writable volume.
	env := r.env(t)
	if got := env["RELAY_DATA_DIR"].Value; got != "/data" {
		t.Errorf("RELAY_DATA_DIR = %q, want /data", got)
	}
	if m := r.mount(t, "data"); m == nil || m.MountPath != "/data" || m.ReadOnly {
		t.Errorf("data mount = %+v, want /data read-write", m)
	}
	if v := r.volume(t, "data"); v == nil || (v.PersistentVolumeClaim == nil && v.EmptyDir == nil) {
		t.Errorf("data volume = %+v, want a PVC or an emptyDir", v)
	}

	// The port the relay listens on is the one probes and the Service use.
	var httpPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if httpPort == 0 {
		t.Fatal("container has no port named http")
	}
	if got, want := env["RELAY_ADDR"].Value, ":"+itoa(httpPort); got != want {
		t.Errorf("RELAY_ADDR = %q, want %q (the http port)", got, want)
	}
	for _, s := range all[*corev1.Service](r) {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		if len(s.Spec.Selector) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s selector %v does not select the pod %v", s.Name, s.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort != intstr.FromString("http") {
				t.Errorf("Service port %s targets %v, want http", p.Name, p.TargetPort)
			}
		}
	}
	dsel, err := metav1LabelSelector(d)
	if err != nil || !dsel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment selector does not match its pod labels: %v", err)
	}

	// Config changes must roll the pods.
	if len(d.Spec.Template.Annotations["checksum/config"]) != 64 {
		t.Errorf("checksum/config annotation = %q, want a sha256", d.Spec.Template.Annotations["checksum/config"])
	}
	// Without a graceful drain window longer than the relay's, the kubelet kills sends.
	grace := pod.TerminationGracePeriodSeconds
	if grace == nil || *grace <= 15 {
		t.Errorf("terminationGracePeriodSeconds = %v, want > 15 (RELAY_SHUTDOWN_TIMEOUT default)", grace)
	}
	// bbolt mode: one pod, stopped before the next starts.
	if _, redis := env["RELAY_REDIS_URL"]; !redis {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("replicas = %v without Redis, want 1", d.Spec.Replicas)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("strategy = %s without Redis, want Recreate", d.Spec.Strategy.Type)
		}
	}
	if !strings.Contains(r.notes, "/sentry/webhook") {
		t.Errorf("NOTES.txt lacks the webhook URL:\n%s", r.notes)
	}
}

// TestDefaults checks the chart's default install in detail.
func TestDefaults(t *testing.T) {
	r := render(t, nil)
	d := r.deployment(t)
	c := r.relay(t)

	if d.Name != fullname || d.Namespace != namespace {
		t.Errorf("Deployment %s/%s, want %s/%s", d.Namespace, d.Name, namespace, fullname)
	}
	if got, want := c.Image, "ghcr.io/sentry-dingtalk-relay/sentry-dingtalk-relay:0.1.0"; got != want {
		t.Errorf("image = %s, want %s (tag = appVersion)", got, want)
	}
	if len(c.Args) != 0 || len(c.Command) != 0 {
		t.Errorf("command %v args %v, want the image's entrypoint and CMD (serve)", c.Command, c.Args)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("strategy = %+v, want Recreate", d.Spec.Strategy)
	}

	// Probes.
	checkHTTPProbe(t, "liveness", c.LivenessProbe, "/healthz")
	checkHTTPProbe(t, "readiness", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		t.Errorf("startupProbe = %+v, want none by default", c.StartupProbe)
	}

	// Resources.
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
	if !equalResources(c.Resources, want) {
		t.Errorf("resources = %+v, want %+v", c.Resources, want)
	}

	// Only the variables the chart must set: the relay's defaults apply to the rest.
	gotEnv := r.env(t)
	if len(gotEnv) != 2 || gotEnv["RELAY_ADDR"].Value != ":8080" || gotEnv["RELAY_DATA_DIR"].Value != "/data" {
		t.Errorf("env = %+v, want only RELAY_ADDR=:8080 and RELAY_DATA_DIR=/data", c.Env)
	}
	if len(all[*corev1.Secret](r)) != 0 {
		t.Error("a Secret is rendered although no secret value is set")
	}

	// Persistence: a 1Gi RWO PVC from the default StorageClass.
	pvcs := all[*corev1.PersistentVolumeClaim](r)
	if len(pvcs) != 1 {
		t.Fatalf("rendered %d PVCs, want 1", len(pvcs))
	}
	pvc := pvcs[0]
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("PVC size = %s, want 1Gi", got.String())
	}
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC accessModes = %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
	}
	if pvc.Spec.StorageClassName != nil {
		t.Errorf("PVC storageClassName = %q, want unset (cluster default)", *pvc.Spec.StorageClassName)
	}
	if v := r.volume(t, "data"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
		t.Errorf("data volume = %+v, want the PVC %s", v, pvc.Name)
	}

	// Service and ServiceAccount.
	svc := named[*corev1.Service](r, fullname)
	if svc == nil {
		t.Fatal("no Service")
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("Service spec = %+v, want ClusterIP port 8080 named http", svc.Spec)
	}
	sa := named[*corev1.ServiceAccount](r, fullname)
	if sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount = %+v, want %s with automountServiceAccountToken false", sa, fullname)
	}
	if d.Spec.Template.Spec.ServiceAccountName != fullname {
		t.Errorf("serviceAccountName = %s, want %s", d.Spec.Template.Spec.ServiceAccountName, fullname)
	}

	// Optional objects are off by default.
	if n := len(all[*policyv1.PodDisruptionBudget](r)) + len(all[*networkingv1.Ingress](r)) + len(all[*networkingv1.NetworkPolicy](r)) + len(r.sms); n != 0 {
		t.Errorf("%d optional objects rendered by default, want 0", n)
	}
}

func checkHTTPProbe(t *testing.T, what string, p *corev1.Probe, wantPath string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe = %+v, want httpGet %s", what, p, wantPath)
		return
	}
	if p.HTTPGet.Path != wantPath || p.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("%s probe = %s on %v, want %s on port http", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), wantPath)
	}
}

// TestProbeOverride checks a probe block can be replaced as a whole and switched off.
func TestProbeOverride(t *testing.T) {
	r := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "nodeport-no-serviceaccount-values.yaml")))
	c := r.relay(t)
	lp := c.LivenessProbe
	if lp == nil || lp.HTTPGet != nil || lp.TCPSocket == nil || lp.TCPSocket.Port != intstr.FromString("http") || lp.PeriodSeconds != 20 {
		t.Errorf("liveness probe = %+v, want only tcpSocket http every 20s", lp)
	}
	if c.ReadinessProbe != nil {
		t.Errorf("readiness probe = %+v, want none (disabled)", c.ReadinessProbe)
	}
	if got := r.deployment(t).Spec.Template.Spec.ServiceAccountName; got != "relay" {
		t.Errorf("serviceAccountName = %s, want relay", got)
	}
	if n := len(all[*corev1.ServiceAccount](r)); n != 0 {
		t.Errorf("%d ServiceAccounts rendered with serviceAccount.create=false", n)
	}
	svc := named[*corev1.Service](r, "rel-relay")
	if svc == nil || svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30880 {
		t.Errorf("Service = %+v, want rel-relay NodePort 30880", svc)
	}

	full := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml")))
	sp := full.relay(t).StartupProbe
	checkHTTPProbe(t, "startup", sp, "/healthz")
}

// secretRef is where one variable is read from.
type secretRef struct{ name, key string }

// TestPersistence checks the /data volume for each storage mode.
func TestPersistence(t *testing.T) {
	tests := []struct {
		name      string
		values    string
		wantPVC   bool
		wantClass *string // PVC storageClassName
		wantSize  string
		wantClaim string // claim used by the pod, "" = emptyDir
	}{
		{name: "default", values: "", wantPVC: true, wantSize: "1Gi", wantClaim: fullname + "-data"},
		{name: "class and size", values: "persistence: {storageClass: fast, size: 5Gi}", wantPVC: true, wantClass: ptr("fast"), wantSize: "5Gi", wantClaim: fullname + "-data"},
		{name: "no class", values: `persistence: {storageClass: "-"}`, wantPVC: true, wantClass: ptr(""), wantSize: "1Gi", wantClaim: fullname + "-data"},
		{name: "existing claim", values: "persistence: {existingClaim: mine}", wantClaim: "mine"},
		{name: "disabled", values: "persistence: {enabled: false}"},
		{name: "redis ignores persistence", values: "redis: {enabled: true, url: 'redis://r:6379/0'}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, parseValues(t, tt.values))
			pvcs := all[*corev1.PersistentVolumeClaim](r)
			if got := len(pvcs) == 1; got != tt.wantPVC || len(pvcs) > 1 {
				t.Fatalf("rendered %d PVCs, want PVC %v", len(pvcs), tt.wantPVC)
			}
			if tt.wantPVC {
				p := pvcs[0]
				if !reflect.DeepEqual(p.Spec.StorageClassName, tt.wantClass) {
					t.Errorf("storageClassName = %v, want %v", deref(p.Spec.StorageClassName), deref(tt.wantClass))
				}
				if got := p.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse(tt.wantSize)) != 0 {
					t.Errorf("size = %s, want %s", got.String(), tt.wantSize)
				}
				if p.Name != tt.wantClaim {
					t.Errorf("PVC %s, want %s", p.Name, tt.wantClaim)
				}
			}
			v := r.volume(t, "data")
			switch {
			case v == nil:
				t.Fatal("no data volume")
			case tt.wantClaim == "" && v.EmptyDir == nil:
				t.Errorf("data volume = %+v, want emptyDir", v)
			case tt.wantClaim != "" && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tt.wantClaim):
				t.Errorf("data volume = %+v, want claim %s", v, tt.wantClaim)
			}
		})
	}

	r := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "no-persistence-values.yaml")))
	v := r.volume(t, "data")
	if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Cmp(resource.MustParse("256Mi")) != 0 {
		t.Errorf("data volume = %+v, want emptyDir sizeLimit 256Mi", v)
	}
	if d := r.deployment(t); d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %s without Redis, want Recreate (the rate limit lives in the pod)", d.Spec.Strategy.Type)
	}
}

// TestRedis checks Redis mode: replicas, rolling updates, spool emptyDir, PDB and the URL.
func TestRedis(t *testing.T) {
	tests := []struct {
		file    string
		replica int32
		url     secretRef
		pdb     policyv1.PodDisruptionBudgetSpec
	}{
		{"redis-values.yaml", 2, secretRef{fullname, "redis-url"}, policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr(intstr.FromInt32(1))}},
		{"redis-existing-secret-values.yaml", 3, secretRef{"sentry-redis-relay", "url"}, policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(2))}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			vals := valuesFile(t, filepath.Join(chartDir, "ci", tt.file))
			r := render(t, vals)
			d := r.deployment(t)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != tt.replica {
				t.Errorf("replicas = %v, want %d", d.Spec.Replicas, tt.replica)
			}
			if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil ||
				*d.Spec.Strategy.RollingUpdate.MaxUnavailable != intstr.FromInt32(0) {
				t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
			}
			if n := len(all[*corev1.PersistentVolumeClaim](r)); n != 0 {
				t.Errorf("rendered %d PVCs in Redis mode, want 0", n)
			}
			if v := r.volume(t, "data"); v == nil || v.EmptyDir == nil {
				t.Errorf("data volume = %+v, want emptyDir", v)
			}
			e, ok := r.env(t)["RELAY_REDIS_URL"]
			if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("RELAY_REDIS_URL = %+v, want a secretKeyRef", e)
			}
			skr := e.ValueFrom.SecretKeyRef
			if skr.Name != tt.url.name || skr.Key != tt.url.key {
				t.Errorf("RELAY_REDIS_URL from %s/%s, want %s/%s", skr.Name, skr.Key, tt.url.name, tt.url.key)
			}
			if skr.Optional != nil && *skr.Optional {
				t.Error("RELAY_REDIS_URL is optional: a missing URL would silently give each replica its own queue")
			}
			if tt.url.name == fullname {
				s := named[*corev1.Secret](r, fullname)
				want := vals["redis"].(map[string]any)["url"].(string)
				if s == nil || string(s.Data["redis-url"]) != want {
					t.Errorf("Secret redis-url = %q, want %q", s.Data["redis-url"], want)
				}
			}
			pdbs := all[*policyv1.PodDisruptionBudget](r)
			if len(pdbs) != 1 {
				t.Fatalf("rendered %d PDBs, want 1", len(pdbs))
			}
			p := pdbs[0].Spec
			if !reflect.DeepEqual(p.MinAvailable, tt.pdb.MinAvailable) || !reflect.DeepEqual(p.MaxUnavailable, tt.pdb.MaxUnavailable) {
				t.Errorf("PDB min %v max %v, want min %v max %v", p.MinAvailable, p.MaxUnavailable, tt.pdb.MinAvailable, tt.pdb.MaxUnavailable)
			}
			sel, err := metav1LabelSelectorOf(p.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("PDB selector %v does not select the pods", p.Selector)
			}
			if strings.Contains(r.notes, "WARNING") {
				t.Errorf("NOTES warns in Redis mode:\n%s", r.notes)
			}
		})
	}

	// The automatic PDB stays off with one replica, even with Redis; forcing it works.
	for values, want := range map[string]int{
		"redis: {enabled: true, url: 'redis://r:6379/0'}":                                                         0,
		"redis: {enabled: true, url: 'redis://r:6379/0'}\npodDisruptionBudget: {enabled: true}":                   1,
		"redis: {enabled: true, url: 'redis://r:6379/0'}\nreplicaCount: 2\npodDisruptionBudget: {enabled: false}": 0,
	} {
		if got := len(all[*policyv1.PodDisruptionBudget](render(t, parseValues(t, values)))); got != want {
			t.Errorf("%q: %d PDBs, want %d", values, got, want)
		}
	}
	// maxUnavailable: 0 is a valid (strict) budget, not "unset".
	strict := render(t, parseValues(t, "redis: {enabled: true, url: 'redis://r:6379/0'}\nreplicaCount: 2\npodDisruptionBudget: {maxUnavailable: 0}"))
	if pdbs := all[*policyv1.PodDisruptionBudget](strict); len(pdbs) != 1 || pdbs[0].Spec.MaxUnavailable == nil || *pdbs[0].Spec.MaxUnavailable != intstr.FromInt32(0) {
		t.Errorf("PDB with maxUnavailable 0 = %+v", pdbs)
	}
}

// TestChecksum checks the pod template changes, and so the pods roll, exactly when
// something the relay reads at start-up changes.
func TestChecksum(t *testing.T) {
	sum := func(values string) string {
		t.Helper()
		return render(t, parseValues(t, values)).deployment(t).Spec.Template.Annotations["checksum/config"]
	}
	base := "dingtalk: {tokens: [tok-one-12345678]}\n"
	ref := sum(base)
	if again := sum(base); again != ref {
		t.Fatalf("checksum not deterministic: %s vs %s", ref, again)
	}
	for name, values := range map[string]string{
		"token":            "dingtalk: {tokens: [tok-two-12345678]}\n",
		"client secret":    base + "sentry: {clientSecret: new}\n",
		"routes":           base + "routes: {config: {routes: [{name: a, robots: [x]}]}}\n",
		"template":         base + "template: {content: '{{define \"title\"}}x{{end}}{{define \"text\"}}y{{end}}'}\n",
		"redis url":        base + "redis: {enabled: true, url: 'redis://other:6379/1'}\n",
		"webhook token":    base + "sentry: {webhookToken: t}\n",
		"dingtalk sec":     "dingtalk: {tokens: [tok-one-12345678], secrets: [SEC12345678]}\n",
		"relay sentry dsn": base + "sentry: {dsn: 'https://k@s/1'}\n",
		"client secrets":   base + "sentry: {clientSecret: [new, other]}\n",
		"action links":     base + "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://r', authToken: at, key: ak}\n",
		"canary dsn":       base + "canary: {dsn: 'https://c@s/2'}\n",
		"smtp url":         base + "smtp: {url: 'smtp://u:p@m:587'}\n",
	} {
		if sum(values) == ref {
			t.Errorf("changing the %s does not change checksum/config", name)
		}
	}
	// Rotating the link key alone must roll the pods, or they keep signing with the old one.
	actions := base + "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://r', authToken: at, key: %s}\n"
	if sum(fmt.Sprintf(actions, "old-key")) == sum(fmt.Sprintf(actions, "new-key")) {
		t.Error("changing actions.key does not change checksum/config")
	}
	// Plain settings are in the pod spec already; they must not disturb the checksum.
	if got := sum(base + "podAnnotations: {a: b}\nconfig: {logLevel: debug, quietAlert: 6h}\ncanary: {interval: 1h}\nsmtp: {from: a@b.example}\n"); got != ref {
		t.Error("checksum/config changed although no Secret or ConfigMap changed")
	}
}

// TestRenderFailures checks invalid values stop rendering with a message naming the fix, and
// that the schema rejects wrong types and values.
func TestRenderFailures(t *testing.T) {
	tests := []struct {
		name    string
		values  string
		wantErr string
	}{
		// Schema (values.schema.json).
		{"replicaCount type", `replicaCount: abc`, "/replicaCount"},
		{"pullPolicy enum", `image: {pullPolicy: Sometimes}`, "/image/pullPolicy"},
		{"language enum", `config: {language: fr}`, "/config/language"},
		{"logLevel enum", `config: {logLevel: verbose}`, "/config/logLevel"},
		{"logFormat enum", `config: {logFormat: xml}`, "/config/logFormat"},
		{"service type enum", `service: {type: ExternalName}`, "/service/type"},
		{"unknown top-level key", `replicas: 2`, "replicas"},
		{"unknown nested key", `persistence: {sise: 2Gi}`, "sise"},
		{"rate above DingTalk's limit", `config: {ratePerMinute: 25}`, "/config/ratePerMinute"},
		{"duration", `config: {maxAge: 1 day}`, "/config/maxAge"},
		{"tokens as a string", `dingtalk: {tokens: "abc"}`, "/dingtalk/tokens"},
		{"atAll type", `dingtalk: {atAll: "yes"}`, "/dingtalk/atAll"},
		{"routes msgtype", `routes: {config: {robots: {a: {token: t, msgtype: text}}}}`, "msgtype"},
		{"routes unknown key", `routes: {config: {routes: [{name: a, robot: [x]}]}}`, "robot"},
		{"routes receiver type", `routes: {config: {robots: {a: {type: sms, to: x}}}}`, "/routes/config/robots/a/type"},
		{"routes key of another type", `routes: {config: {robots: {a: {type: email, token: supersecrettoken123}}}}`, "additional properties 'token' not allowed"},
		{"routes email key on dingtalk", `routes: {config: {robots: {a: {token: supersecrettoken123, to: [a@b.example]}}}}`, "additional properties 'to' not allowed"},
		{"routes dingtalk key on wecom", `routes: {config: {robots: {a: {type: wecom, key: supersecrettoken123, msgtype: markdown}}}}`, "additional properties 'msgtype' not allowed"},
		{"routes fallback as a string", `routes: {config: {robots: {a: {token: supersecrettoken123, fallback: b}}}}`, "/routes/config/robots/a/fallback"},
		{"routes webhook rate", `routes: {config: {robots: {a: {type: webhook, url: 'https://h', rate_per_minute: "5"}}}}`, "/routes/config/robots/a/rate_per_minute"},
		{"probe typo", `livenessProbe: {periodSecond: 3}`, "periodSecond"},
		{"pvc size", `persistence: {size: lots}`, "/persistence/size"},
		// Unquoted numbers would reach the relay as 1.38e+10.
		{"numeric mobile", `dingtalk: {atMobiles: [13800000000]}`, "/dingtalk/atMobiles/0"},
		{"numeric route mobile", `routes: {config: {routes: [{name: a, mentions: {mobiles: [13800000000]}}]}}`, "mobiles/0"},
		{"numeric image tag", `image: {tag: 1.10}`, "/image/tag"},
		{"client secret as a map", `sentry: {clientSecret: {a: supersecrettoken123}}`, "/sentry/clientSecret"},
		{"client secret as a number", `sentry: {clientSecret: 12345678}`, "/sentry/clientSecret"},
		{"client secret list of maps", `sentry: {clientSecret: [{a: supersecrettoken123}]}`, "/sentry/clientSecret/0"},
		{"empty client secret in the list", `sentry: {clientSecret: [supersecrettoken123, ""]}`, "/sentry/clientSecret/1"},
		{"public URL not a URL", `actions: {publicURL: dingtalk-relay.example.com}`, "/actions/publicURL"},
		{"action ttl in days", `actions: {ttl: 7d}`, "/actions/ttl"},
		{"action unknown key", `actions: {token: supersecrettoken123}`, "token"},
		{"auth token type", `actions: {authToken: [supersecrettoken123]}`, "/actions/authToken"},
		{"canary interval", `canary: {interval: 6 hours}`, "/canary/interval"},
		{"canary timeout", `canary: {timeout: 15}`, "/canary/timeout"},
		{"canary dsn type", `canary: {dsn: {a: supersecrettoken123}}`, "/canary/dsn"},
		{"smtp unknown key", `smtp: {password: supersecrettoken123}`, "password"},
		{"smtp url type", `smtp: {url: [supersecrettoken123]}`, "/smtp/url"},
		{"quiet alert", `config: {quietAlert: "on"}`, "/config/quietAlert"},
		{"fallback after", `config: {fallbackAfter: 10}`, "/config/fallbackAfter"},
		// Template checks.
		{"replicas without redis", `replicaCount: 2`, "replicaCount=2 needs redis.enabled=true"},
		{"redis url while disabled", `redis: {url: 'redis://r:6379/0'}`, "set redis.enabled=true"},
		{"redis enabled without url", `redis: {enabled: true}`, "redis.enabled=true needs the Redis URL"},
		{"redis url twice", `redis: {enabled: true, url: 'redis://r/0', existingSecret: s}`, "redis.url and redis.existingSecret are both set"},
		{"inline secret with existingSecret", "existingSecret: creds\ndingtalk: {tokens: [supersecrettoken123]}", "would ignore dingtalk.tokens"},
		{"client secret list with existingSecret", "existingSecret: creds\nsentry: {clientSecret: [supersecrettoken123]}", "would ignore sentry.clientSecret"},
		{"new inline secrets with existingSecret",
			"existingSecret: creds\nactions: {publicURL: 'https://r', authToken: supersecrettoken123, key: supersecrettoken123}\ncanary: {dsn: supersecrettoken123}\nsmtp: {url: supersecrettoken123}",
			"would ignore actions.authToken, actions.key, canary.dsn, smtp.url"},
		{"public URL alone", "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://r'}", "set actions.authToken and actions.key"},
		{"action key alone", "sentry: {url: 'https://s'}\nactions: {key: supersecrettoken123}", "set actions.publicURL and actions.authToken"},
		{"action links without the key", "sentry: {url: 'https://s'}\nactions: {publicURL: 'https://r', authToken: supersecrettoken123}", "set actions.key,"},
		{"action links unsigned without sentry.url", "actions: {publicURL: 'https://r', authToken: supersecrettoken123, key: supersecrettoken123}", "action links need sentry.url"},
		{"secrets without tokens", `dingtalk: {tokens: [a12345678, b12345678], secrets: [SEC12345678]}`, "dingtalk.secrets has 1 entries but dingtalk.tokens has 2"},
		{"routes twice", `routes: {config: {routes: [{name: a}]}, existingSecret: r}`, "routes.config and routes.existingSecret are both set"},
		{"template twice", `template: {content: x, existingConfigMap: c}`, "template.content and template.existingConfigMap are both set"},
		{"drain longer than grace", `config: {shutdownTimeout: 40s}`, "must be shorter than terminationGracePeriodSeconds"},
		{"drain in minutes", "config: {shutdownTimeout: 1m}\nterminationGracePeriodSeconds: 60", "must be shorter than terminationGracePeriodSeconds"},
		{"networkpolicy admits nobody", `networkPolicy: {enabled: true, sentry: {namespaceSelector: null, podSelector: null}}`, "networkPolicy.sentry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderRaw(t, parseValues(t, tt.values))
			if err == nil {
				t.Fatalf("rendered without error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v\nwant it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "supersecrettoken123") {
				t.Errorf("error prints a secret value: %v", err)
			}
		})
	}

	// The same values render once fixed, so each failure above is the check under test.
	for _, ok := range []string{
		"global: {imageRegistry: x}",
		"replicaCount: 2\nredis: {enabled: true, url: 'redis://r:6379/0'}",
		"config: {shutdownTimeout: 29s, maxAge: 1h30m}",
		"dingtalk: {tokens: [a12345678, b12345678], secrets: [SEC12345678, '-']}",
		"existingSecret: creds\nredis: {enabled: true}",
		"actions: {publicURL: 'https://r', authToken: at, key: ak}\nsentry: {url: 'https://s'}",
		"actions: {publicURL: 'https://r', authToken: at, key: ak}\nsentry: {clientSecret: [cs-one, cs-two]}",
		"actions: {publicURL: 'https://r', ttl: 24h}\nexistingSecret: creds",
		"canary: {interval: 1h30m, timeout: 90s}\nconfig: {quietAlert: 6h, fallbackAfter: 30s}",
		// Every receiver type of the routes file, with the keys of its type.
		`smtp: {url: 'smtp://u:p@m:587'}
routes: {config: {robots: {
  ding: {type: dingtalk, token: t, secret: s, keyword: k, msgtype: markdown, fallback: [mail]},
  plain: {token_file: /f, secret_file: /g},
  wx: {type: wecom, url: u, key: k, key_file: /f, api_url: a, fallback: [mail]},
  fs: {type: feishu, url: u, url_file: /f, secret: s, secret_file: /g, keyword: k},
  hook: {type: webhook, url: u, secret: s, secret_file: /f, rate_per_minute: 30},
  mail: {type: email, to: [a@b.example, c@d.example]},
  mail2: {type: email, to: "a@b.example, c@d.example"}},
  routes: [{name: d, robots: [ding, wx, fs, hook, mail]}]}}`,
	} {
		if _, err := renderRaw(t, parseValues(t, ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestLintCatchesErrors makes sure the lint run in TestCIValues can fail at all.
func TestLintCatchesErrors(t *testing.T) {
	if msgs := lintChart(parseValues(t, "replicaCount: abc")); len(msgs) == 0 {
		t.Error("helm lint accepted replicaCount: abc")
	}
	// helm lint runs templates in "lint mode", where fail only logs: the template checks
	// (replicaCount > 1 without Redis...) are covered by TestRenderFailures instead.
}

// TestStrictDecoding makes sure the decoder used on every manifest rejects unknown fields.
func TestStrictDecoding(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n")
	if _, _, err := strictDecoder.Decode(doc, nil, nil); err == nil || !strings.Contains(err.Error(), "prots") {
		t.Errorf("strict decode of a misspelt field: err = %v", err)
	}
	var sm serviceMonitor
	if err := yaml.UnmarshalStrict([]byte("spec: {endpoints: [{port: http, intervall: 1s}]}"), &sm); err == nil {
		t.Error("ServiceMonitor decode accepted a misspelt field")
	}
}

// TestNotes checks what NOTES.txt tells the user.
func TestNotes(t *testing.T) {
	def := render(t, nil).notes
	for _, want := range []string{
		"http://" + fullname + "." + namespace + ".svc:8080/sentry/webhook",
		"kubectl exec -n " + namespace + " deploy/" + fullname + " -- /sentry-dingtalk-relay test",
		"kubectl exec -n " + namespace + " deploy/" + fullname + " -- /sentry-dingtalk-relay deadletters list",
	} {
		if !strings.Contains(def, want) {
			t.Errorf("NOTES lacks %q:\n%s", want, def)
		}
	}
	if strings.Contains(def, "WARNING") {
		t.Errorf("NOTES warns with persistence on:\n%s", def)
	}

	np := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "no-persistence-values.yaml"))).notes
	if !strings.Contains(np, "WARNING: persistence is disabled") || !strings.Contains(np, "LOST") {
		t.Errorf("NOTES lacks the data-loss warning with persistence off:\n%s", np)
	}

	full := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml"))).notes
	for _, want := range []string{
		"https://dingtalk-relay.example.com/sentry/webhook",
		"http://dingtalk-relay." + namespace + ".svc:8080/sentry/webhook",
		"?token=",
	} {
		if !strings.Contains(full, want) {
			t.Errorf("full NOTES lacks %q:\n%s", want, full)
		}
	}
	if strings.Contains(full, "legacy-token-0123") {
		t.Error("NOTES prints the webhook token")
	}
}

// TestNotesNameTheImage: the notes say which image runs, so a pull failure
// or a forgotten image.tag is visible at install time.
func TestNotesNameTheImage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		image  string
	}{
		{"default", nil, "ghcr.io/sentry-dingtalk-relay/sentry-dingtalk-relay:0.1.0"},
		{"own build", parseValues(t, `image: {repository: registry.example.com/ops/sentry-dingtalk-relay, tag: "1.2.3"}`),
			"registry.example.com/ops/sentry-dingtalk-relay:1.2.3"},
		{"digest", valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml")),
			"ghcr.io/sentry-dingtalk-relay/sentry-dingtalk-relay:0.1.0-rc.1@sha256:0000000000000000000000000000000000000000000000000000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.values)
			if got := r.relay(t).Image; got != tc.image {
				t.Errorf("container image = %s, want %s", got, tc.image)
			}
			if want := "Image: " + tc.image + " "; !strings.Contains(r.notes, want) {
				t.Errorf("NOTES lack %q:\n%s", want, r.notes)
			}
		})
	}
}

// TestMonitoringAndNetwork checks the ServiceMonitor, NetworkPolicy and Ingress of the full scenario.
func TestMonitoringAndNetwork(t *testing.T) {
	r := render(t, valuesFile(t, filepath.Join(chartDir, "ci", "full-values.yaml")))
	const name = "dingtalk-relay"
	svc := named[*corev1.Service](r, name)
	if svc == nil {
		t.Fatal("no Service")
	}

	if len(r.sms) != 1 {
		t.Fatalf("rendered %d ServiceMonitors, want 1", len(r.sms))
	}
	sm := r.sms[0]
	if sm.Metadata.Namespace != "monitoring" || sm.Metadata.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor meta = %+v", sm.Metadata)
	}
	if sel, err := metav1LabelSelectorOf(&sm.Spec.Selector); err != nil || !sel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the Service labels %v", sm.Spec.Selector, svc.Labels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("namespaceSelector = %v, want [%s]", sm.Spec.NamespaceSelector.MatchNames, namespace)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "http" || ep.Path != "/metrics" || ep.Interval != "15s" || ep.ScrapeTimeout != "5s" || !ep.HonorLabels {
		t.Errorf("endpoint = %+v", ep)
	}
	if len(ep.Relabelings) != 1 || ep.Relabelings[0].TargetLabel != "node" || len(ep.MetricRelabelings) != 1 || ep.MetricRelabelings[0].Action != "drop" {
		t.Errorf("relabelings = %+v / %+v", ep.Relabelings, ep.MetricRelabelings)
	}

	nps := all[*networkingv1.NetworkPolicy](r)
	if len(nps) != 1 {
		t.Fatalf("rendered %d NetworkPolicies, want 1", len(nps))
	}
	np := nps[0].Spec
	d := r.deployment(t)
	if sel, err := metav1LabelSelectorOf(&np.PodSelector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy podSelector %v does not select the pods", np.PodSelector)
	}
	if len(np.Ingress) != 1 || len(np.Ingress[0].From) != 3 {
		t.Fatalf("ingress rules = %+v, want 1 rule from Sentry + 2 extra peers", np.Ingress)
	}
	from := np.Ingress[0].From[0]
	if from.NamespaceSelector == nil || from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "sentry" ||
		from.PodSelector == nil || from.PodSelector.MatchLabels["app"] != "sentry" {
		t.Errorf("first peer = %+v, want Sentry's namespace and pods", from)
	}
	if ports := np.Ingress[0].Ports; len(ports) != 1 || *ports[0].Port != intstr.FromString("http") {
		t.Errorf("ingress ports = %+v, want http", ports)
	}
	if !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Egress) != 2 {
		t.Errorf("policyTypes %v egress %d rules, want Egress with 2 rules", np.PolicyTypes, len(np.Egress))
	}
	// Without egress rules the policy leaves egress alone.
	open := render(t, parseValues(t, "networkPolicy: {enabled: true}"))
	onp := all[*networkingv1.NetworkPolicy](open)[0].Spec
	if !slices.Equal(onp.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || onp.Egress != nil {
		t.Errorf("default NetworkPolicy restricts egress: %+v", onp)
	}

	ings := all[*networkingv1.Ingress](r)
	if len(ings) != 1 {
		t.Fatalf("rendered %d Ingresses, want 1", len(ings))
	}
	ing := ings[0].Spec
	if ing.IngressClassName == nil || *ing.IngressClassName != "nginx" || len(ing.TLS) != 1 || ing.TLS[0].SecretName != "dingtalk-relay-tls" {
		t.Errorf("ingress = %+v", ing)
	}
	p := ing.Rules[0].HTTP.Paths[0]
	if p.Path != "/sentry" || p.Backend.Service.Name != name || p.Backend.Service.Port.Number != 8080 {
		t.Errorf("ingress path = %+v, want /sentry -> %s:8080", p, name)
	}
}

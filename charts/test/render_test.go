// Package charttest renders the sentry-dingtalk-relay Helm chart in-process with Helm's own
// loader, values/schema handling, engine and linter, and strictly decodes every manifest into
// Kubernetes API types, so the chart is checked without a cluster or the helm binary.
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../sentry-dingtalk-relay"
	releaseName = "rel"
	namespace   = "ns"
	fullname    = "rel-sentry-dingtalk-relay"
)

// kubeVersion is the cluster version templates and lint see: the oldest the chart supports
// would hide nothing here, a recent one catches deprecated APIs.
var kubeVersion = chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// strictDecoder rejects unknown and duplicate fields, like `kubectl apply --validate=strict`.
var strictDecoder = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// rendered is the chart rendered for one set of values.
type rendered struct {
	objects []runtime.Object  // every manifest known to client-go, strictly decoded
	sms     []serviceMonitor  // ServiceMonitors (a CRD), strictly decoded
	notes   string            // NOTES.txt
	files   map[string]string // template path -> raw output
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart renders;
// decoding it strictly makes a misspelt or misplaced field fail.
type serviceMonitor struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
			Any        bool     `json:"any,omitempty"`
		} `json:"namespaceSelector"`
		TargetLabels []string `json:"targetLabels,omitempty"`
		Endpoints    []struct {
			Port              string          `json:"port"`
			Path              string          `json:"path,omitempty"`
			Interval          string          `json:"interval,omitempty"`
			ScrapeTimeout     string          `json:"scrapeTimeout,omitempty"`
			HonorLabels       bool            `json:"honorLabels,omitempty"`
			Relabelings       []relabelConfig `json:"relabelings,omitempty"`
			MetricRelabelings []relabelConfig `json:"metricRelabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type relabelConfig struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    string   `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Modulus      uint64   `json:"modulus,omitempty"`
	Replacement  *string  `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// parseValues reads values the way `helm -f` does (numbers become float64).
func parseValues(t *testing.T, src string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(src))
	if err != nil {
		t.Fatalf("parse values: %v\n%s", err, src)
	}
	return v.AsMap()
}

func valuesFile(t *testing.T, file string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return v.AsMap()
}

// ciValueFiles lists ci/*-values.yaml, the chart-testing scenarios.
func ciValueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d ci/*-values.yaml files, want at least 6", len(files))
	}
	sort.Strings(files)
	return files
}

// renderRaw renders the chart as `helm install rel -n ns` would, schema included, and returns
// the templates' output or the error helm would print.
func renderRaw(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	top, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, top)
}

// render renders and strictly decodes everything; any failure fails the test.
func render(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	files, err := renderRaw(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	r := &rendered{files: files}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		switch {
		case base == "NOTES.txt":
			r.notes = files[name]
			continue
		case strings.HasPrefix(base, "_"):
			continue
		}
		for _, doc := range splitYAML(t, name, files[name]) {
			r.decode(t, name, doc)
		}
	}
	return r
}

// splitYAML splits a template's output into documents, dropping empty ones.
func splitYAML(t *testing.T, name, out string) [][]byte {
	t.Helper()
	var docs [][]byte
	rd := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: split YAML: %v", name, err)
		}
		if hasContent(doc) {
			docs = append(docs, doc)
		}
	}
}

func hasContent(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return true
		}
	}
	return false
}

func (r *rendered) decode(t *testing.T, name string, doc []byte) {
	t.Helper()
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, doc)
	}
	if head.APIVersion == "monitoring.coreos.com/v1" && head.Kind == "ServiceMonitor" {
		var sm serviceMonitor
		if err := yaml.UnmarshalStrict(doc, &sm); err != nil {
			t.Fatalf("%s: strict decode ServiceMonitor: %v\n%s", name, err, doc)
		}
		r.sms = append(r.sms, sm)
		return
	}
	obj, _, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		t.Fatalf("%s: strict decode: %v\n%s", name, err, doc)
	}
	r.objects = append(r.objects, obj)
}

// all returns the rendered objects of type T.
func all[T runtime.Object](r *rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the object of type T with that name, or the zero value.
func named[T interface {
	runtime.Object
	GetName() string
}](r *rendered, name string) T {
	var zero T
	for _, o := range all[T](r) {
		if o.GetName() == name {
			return o
		}
	}
	return zero
}

func (r *rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	ds := all[*appsv1.Deployment](r)
	if len(ds) != 1 {
		t.Fatalf("rendered %d Deployments, want 1", len(ds))
	}
	return ds[0]
}

// relay returns the relay container.
func (r *rendered) relay(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deployment(t).Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("pod has %d containers, want 1", len(cs))
	}
	return cs[0]
}

func (r *rendered) env(t *testing.T) map[string]corev1.EnvVar {
	t.Helper()
	m := map[string]corev1.EnvVar{}
	for _, e := range r.relay(t).Env {
		if _, dup := m[e.Name]; dup {
			t.Errorf("env %s is set twice", e.Name)
		}
		m[e.Name] = e
	}
	return m
}

func (r *rendered) volume(t *testing.T, name string) *corev1.Volume {
	t.Helper()
	for _, v := range r.deployment(t).Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &v
		}
	}
	return nil
}

func (r *rendered) mount(t *testing.T, name string) *corev1.VolumeMount {
	t.Helper()
	for _, m := range r.relay(t).VolumeMounts {
		if m.Name == name {
			return &m
		}
	}
	return nil
}

// lintChart runs `helm lint` on the chart with these values and returns the messages at
// warning level or above.
func lintChart(vals map[string]any) []support.Message {
	kv := kubeVersion
	res := lint.AllWithKubeVersion(chartDir, vals, namespace, &kv)
	var bad []support.Message
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			bad = append(bad, m)
		}
	}
	return bad
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return strconv.Quote(*s)
}

// equalResources compares quantities by value ("0.02" equals "20m").
func equalResources(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, q := range x {
			if w, ok := y[k]; !ok || q.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

func metav1LabelSelectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return nil, errors.New("empty selector")
	}
	return metav1.LabelSelectorAsSelector(s)
}

func metav1LabelSelector(d *appsv1.Deployment) (labels.Selector, error) {
	return metav1LabelSelectorOf(d.Spec.Selector)
}

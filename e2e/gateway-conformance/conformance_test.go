// The upstream Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance, the version
// go.mod names) run against Weft. What to run comes from the suite's own options file and flags
// (weft-conformance.yaml: the GatewayClass, the GATEWAY-HTTP and MESH-HTTP profiles and their core
// features, the namespace label that injects the sidecar; flags: the timeouts, one test or tests
// to skip, the report's path); this file only adds what the stock conformance.RunConformance lacks
// for us:
//
//   - Setup runs as two subtests of its own (SetupMesh, SetupGateway), so a Setup that cannot
//     finish (no GatewayClass accepted yet, a Gateway not Programmed) is one named failure and
//     every test still runs and reports; the options' namespace labels (sidecar injection) are
//     given to the mesh namespaces only;
//   - one line per test as it ends (`weft-conformance: PASS|FAIL|SKIP <test>`) and a
//     table with the totals at the end, for a human reading `go test -v` (the Kubernetes-tier test
//     reads `go test -json` instead).
package conformance_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"
)

type outcome struct {
	name   string
	result string
}

func TestGatewayAPIConformance(t *testing.T) {
	opts := conformance.DefaultOptions(t)
	require.NoError(t, opts.Implementation.Validate(), "the implementation block of the options file is incomplete")

	var mu sync.Mutex
	var outcomes []outcome
	opts.Hook = func(st *testing.T, test suite.ConformanceTest, _ *suite.ConformanceTestSuite) {
		result := "PASS"
		switch {
		case st.Failed():
			result = "FAIL"
		case st.Skipped():
			result = "SKIP"
		}
		fmt.Printf("weft-conformance: %s %s\n", result, test.ShortName)
		mu.Lock()
		outcomes = append(outcomes, outcome{test.ShortName, result})
		mu.Unlock()
	}

	cSuite, err := suite.NewConformanceTestSuite(opts)
	require.NoError(t, err, "error initializing conformance suite")

	// The report is written even when tests fail: it is the record of the run.
	if opts.ReportOutputPath != "" {
		t.Cleanup(func() {
			report, rErr := cSuite.Report()
			if rErr != nil {
				t.Errorf("conformance report: %v", rErr)
				return
			}
			writeReport(t, *report, opts.ReportOutputPath)
		})
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		printTable(outcomes)
	})

	// Setup fills these from the accepted GatewayClass; set from the class as it is, so that when
	// it cannot, the tests' own manifests still name our class and controller.
	cSuite.Applier.GatewayClass = opts.GatewayClassName
	gwc := &gatewayv1.GatewayClass{}
	if err := opts.Client.Get(context.Background(), client.ObjectKey{Name: opts.GatewayClassName}, gwc); err == nil {
		cSuite.ControllerName = string(gwc.Spec.ControllerName)
		cSuite.Applier.ControllerName = cSuite.ControllerName
	}

	// Setup in two parts, mesh then gateway: upstream's Setup stops at the first thing missing
	// (the GatewayClass not Accepted comes first), which would keep the mesh namespaces from
	// being made and turn every mesh test into "namespace not found". Each part is a subtest, so
	// the base resources' cleanup (which Setup ties to the test it is given) is ours, at the end.
	cleanupBase := cSuite.Cleanup
	cSuite.Cleanup = false
	if cleanupBase {
		t.Cleanup(func() { deleteNamespaces(t, opts.Client) })
	}
	all := cSuite.SupportedFeatures
	// With -run-test, only the parts that test needs (upstream's Setup would add a part back from
	// the test's features, so it is given no RunTest here and the choice is made below).
	needed := all
	runTest := cSuite.RunTest
	if runTest != "" {
		idx := slices.IndexFunc(tests.ConformanceTests, func(c suite.ConformanceTest) bool { return c.ShortName == runTest })
		require.NotEqual(t, -1, idx, "-run-test: no test named %q", runTest)
		needed = sets.New(tests.ConformanceTests[idx].Features...)
	}
	for _, part := range []struct {
		name string
		drop features.FeatureName
		need features.FeatureName
	}{{"SetupMesh", features.SupportGateway, features.SupportMesh}, {"SetupGateway", features.SupportMesh, features.SupportGateway}} {
		if !needed.Has(part.need) {
			continue
		}
		cSuite.SupportedFeatures = all.Clone().Delete(part.drop)
		cSuite.SupportedFeatures.Insert(part.need)
		// The namespace labels (the sidecar injection) go on the mesh namespaces only: a Gateway
		// reaches its backends with or without a sidecar in front of them, and 20-odd sidecars
		// (100m CPU requested each, as Istio's) do not fit a 2-core node beside the gateways.
		cSuite.Applier.NamespaceLabels = nil
		if part.need == features.SupportMesh {
			cSuite.Applier.NamespaceLabels = opts.NamespaceLabels
		}
		cSuite.RunTest = ""
		t.Run(part.name, func(st *testing.T) { cSuite.Setup(st, tests.ConformanceTests) })
		cSuite.RunTest = runTest
	}
	cSuite.SupportedFeatures = all
	cSuite.Applier.NamespaceLabels = opts.NamespaceLabels
	cSuite.Cleanup = cleanupBase
	require.NoError(t, cSuite.Run(t, tests.ConformanceTests))
}

// deleteNamespaces removes the suite's base namespaces (and with them everything Setup made in
// them) without waiting: the next run's Setup waits for what it needs.
func deleteNamespaces(t *testing.T, c client.Client) {
	for _, ns := range []string{suite.InfrastructureNamespace, suite.AppBackendNamespace, suite.WebBackendNamespace, suite.MeshNamespace, suite.MeshConsumerNamespace} {
		err := c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting namespace %s: %v", ns, err)
		}
	}
}

func writeReport(t *testing.T, report confv1.ConformanceReport, path string) {
	raw, err := yaml.Marshal(report)
	if err != nil {
		t.Errorf("conformance report: %v", err)
		return
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Errorf("conformance report: %v", err)
		return
	}
	fmt.Printf("weft-conformance: report written to %s\n", path)
}

func printTable(outcomes []outcome) {
	sorted := append([]outcome(nil), outcomes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	counts := map[string]int{}
	var b strings.Builder
	b.WriteString("weft-conformance: results\n")
	for _, o := range sorted {
		counts[o.result]++
		fmt.Fprintf(&b, "  %-4s  %s\n", o.result, o.name)
	}
	fmt.Fprintf(&b, "weft-conformance: %d passed, %d failed, %d skipped\n", counts["PASS"], counts["FAIL"], counts["SKIP"])
	fmt.Print(b.String())
}

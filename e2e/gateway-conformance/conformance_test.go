// The upstream Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance, the version
// go.mod names) run against Weft. What to run comes from the suite's own options file and flags
// (weft-conformance.yaml: the GatewayClass, the GATEWAY-HTTP and MESH-HTTP profiles, the
// namespace label that injects the sidecar, the timeouts); this file only adds what the stock
// conformance.RunConformance lacks for us:
//
//   - Setup runs as its own subtest, so a Setup that cannot finish (no GatewayClass accepted yet,
//     a Gateway not Programmed) is one named failure and every test still runs and reports;
//   - one line per test as it ends (`weft-conformance: PASS|FAIL|SKIP <test>`) and a
//     table with the totals at the end, for a human reading `go test -v` (the Kubernetes-tier test
//     reads `go test -json` instead).
package conformance_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
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

	// Setup fills these from the accepted GatewayClass; set so that, when it cannot, the tests'
	// own manifests still name our class and each test fails for its own reason.
	cSuite.Applier.GatewayClass = opts.GatewayClassName
	t.Run("Setup", func(st *testing.T) { cSuite.Setup(st, tests.ConformanceTests) })
	require.NoError(t, cSuite.Run(t, tests.ConformanceTests))
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

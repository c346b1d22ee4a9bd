// The CoreDNS of the suite's base manifests (registry.k8s.io/coredns/coredns, the UDPRoute tests'
// backend in gateway-conformance-infra), built with only the plugins its Corefile names. Its pod
// must run for the suite's Setup to find every pod of that namespace Ready.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func init() {
	dnsserver.Directives = []string{"errors", "log", "forward", "whoami"}
}

func main() { coremain.Run() }

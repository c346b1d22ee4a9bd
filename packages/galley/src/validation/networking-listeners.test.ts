// Gateway, ServiceEntry, WorkloadEntry and Sidecar rules (VirtualService and DestinationRule: networking.test.ts).
import { describe, expect, it } from 'vitest';
import { invalid, networkingResource as resource, problems, warns } from './test-support.ts';


describe('Gateway: invalid', () => {
  invalid('Gateway', [
    ['no servers', `
      selector: {istio: ingressgateway}
      servers: [] # <--`, 'spec.servers', 'gateway must have at least one server'],
    ['port out of range', `
      servers:
      - port:
          number: 66000 # <--
          name: http
          protocol: HTTP
        hosts: ["*.example.com"]`, 'spec.servers[0].port.number', 'port number 66000 must be in the range 1..65535'],
    ['duplicate port names', `
      servers:
      - port: {number: 80, name: web, protocol: HTTP}
        hosts: [bookinfo.example.com]
      - port:
          number: 8080
          name: web # <--
          protocol: HTTP
        hosts: [reviews.example.com]`, 'spec.servers[1].port.name', 'port names in servers must be unique: duplicate name web'],
    ['empty port name', `
      servers:
      - port:
          number: 80
          name: "" # <--
          protocol: HTTP
        hosts: [bookinfo.example.com]`, 'spec.servers[0].port.name', 'port name must be set'],
    ['unknown protocol', `
      servers:
      - port:
          number: 9092
          name: kafka
          protocol: KAFKA # <--
        hosts: [kafka.example.com]`, 'spec.servers[0].port.protocol', 'invalid protocol "KAFKA", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP'],
    ['target port on a gateway', `
      servers:
      - port:
          number: 80
          name: http
          protocol: HTTP
          targetPort: 8080 # <--
        hosts: [bookinfo.example.com]`, 'spec.servers[0].port.targetPort', 'targetPort has no impact on Gateways'],
    ['empty hosts', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [] # <--`, 'spec.servers[0].hosts', 'server config must contain at least one host'],
    ['short host name', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts:
        - reviews # <--`, 'spec.servers[0].hosts[0]', 'short names (non FQDN) are not allowed'],
    ['host with a bad character', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts:
        - prod/foo.ba!r.com # <--`, 'spec.servers[0].hosts[0]', 'domain name "foo.ba!r.com" invalid (label "ba!r" invalid)'],
    ['host namespace not a DNS label', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts:
        - Team_A/bookinfo.example.com # <--`, 'spec.servers[0].hosts[0]', 'invalid namespace value "Team_A" in gateway'],
    ['partial wildcard host', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts:
        - "*bookinfo.com" # <--`, 'spec.servers[0].hosts[0]', 'partial wildcard "*bookinfo.com" not allowed'],
    ['HTTPS without TLS settings', `
      servers:
      - port:
          number: 443
          name: https
          protocol: HTTPS # <--
        hosts: [bookinfo.example.com]`, 'spec.servers[0].port.protocol', 'server must have TLS settings for HTTPS/TLS protocols'],
    ['HTTP with TLS termination', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [bookinfo.example.com]
        tls: # <--
          mode: SIMPLE
          credentialName: bookinfo-cert`, 'spec.servers[0].tls', 'server cannot have TLS settings for plain text HTTP ports'],
    ['TCP with TLS settings', `
      servers:
      - port: {number: 3306, name: mysql, protocol: TCP}
        hosts: [db.example.com]
        tls: # <--
          mode: PASSTHROUGH`, 'spec.servers[0].tls', 'server cannot have TLS settings for non HTTPS/TLS ports'],
    ['MUTUAL without a client CA', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: MUTUAL # <--
          serverCertificate: /etc/certs/cert.pem
          privateKey: /etc/certs/key.pem`, 'spec.servers[0].tls.mode', 'MUTUAL TLS requires a client CA bundle'],
    ['ISTIO_MUTUAL with a credential', `
      servers:
      - port: {number: 15443, name: tls, protocol: TLS}
        hosts: ["*.local"]
        tls:
          mode: ISTIO_MUTUAL
          credentialName: my-cert # <--`, 'spec.servers[0].tls.credentialName', 'ISTIO_MUTUAL TLS cannot have associated credentialName'],
    ['credential name and certificate files', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: SIMPLE
          serverCertificate: /etc/certs/cert.pem
          privateKey: /etc/certs/key.pem
          credentialName: bookinfo-cert # <--`, 'spec.servers[0].tls.credentialName', 'only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified'],
    ['a CRL with SIMPLE TLS', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: SIMPLE
          serverCertificate: /etc/certs/cert.pem
          privateKey: /etc/certs/key.pem
          caCrl: /etc/certs/crl.pem # <--`, 'spec.servers[0].tls.caCrl', 'CRL is not supported with SIMPLE TLS'],
    ['second certificate without a key', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: SIMPLE
          tlsCertificates:
          - {serverCertificate: /etc/certs/rsa.pem, privateKey: /etc/certs/rsa.key}
          - {serverCertificate: /etc/certs/ec.pem} # <--`, 'spec.servers[0].tls.tlsCertificates[1]', 'SIMPLE TLS requires a private key'],
    ['bind to a host name', `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        bind: gateway.local # <--
        hosts: [bookinfo.example.com]`, 'spec.servers[0].bind', 'gateway.local is not a valid IP'],
    ['unix socket with a port number', `
      servers:
      - port:
          number: 8080 # <--
          name: http
          protocol: HTTP
        bind: unix:///var/run/gw.sock
        hosts: [bookinfo.example.com]`, 'spec.servers[0].port.number', 'port number must be 0 for unix domain socket'],
    ['relative unix socket path', `
      servers:
      - port: {number: 0, name: http, protocol: HTTP}
        bind: unix://run/gw.sock # <--
        hosts: [bookinfo.example.com]`, 'spec.servers[0].bind', 'run/gw.sock is not an absolute path to a file'],
  ]);

  it('refuses a gateway name with a dot, at metadata.name', () => {
    const yaml = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: my.gateway\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n';
    expect(problems(yaml)).toEqual([[4, 'metadata.name', 'invalid gateway name: "my.gateway"']]);
  });

  it('reports both missing halves of a SIMPLE certificate, at the mode', () => {
    const yaml = resource('Gateway', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: SIMPLE`);
    expect(problems(yaml)).toEqual([
      [11, 'spec.servers[0].tls.mode', 'SIMPLE TLS requires a server certificate'],
      [11, 'spec.servers[0].tls.mode', 'SIMPLE TLS requires a private key'],
    ]);
  });

  it('accepts ~/host only for gateways derived from Gateway API', () => {
    const spec = 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["~/bookinfo.example.com"]';
    expect(problems(resource('Gateway', spec))).toEqual([[9, 'spec.servers[0].hosts[0]', 'invalid namespace value "~" in gateway']]);
    const derived = resource('Gateway', spec).replace('  namespace: default\n', '  namespace: default\n  annotations: {internal.istio.io/gateway-semantics: gateway}\n');
    expect(problems(derived)).toEqual([]);
  });
});

describe('Gateway: warnings', () => {
  warns('Gateway', [
    ['httpsRedirect on an HTTPS server', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          httpsRedirect: true # <--
          mode: SIMPLE
          credentialName: bookinfo-cert`, 'spec.servers[0].tls.httpsRedirect', 'tls.httpsRedirect should only be used with http servers'],
    ['unknown cipher suite', `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [bookinfo.example.com]
        tls:
          mode: SIMPLE
          credentialName: bookinfo-cert
          cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER] # <--`, 'spec.servers[0].tls.cipherSuites', 'ignoring invalid cipher suites: [NOT-A-CIPHER]'],
    ['certificates in PASSTHROUGH mode', `
      servers:
      - port: {number: 443, name: tls, protocol: TLS}
        hosts: [bookinfo.example.com]
        tls:
          mode: PASSTHROUGH # <--
          credentialName: bookinfo-cert`, 'spec.servers[0].tls.mode', 'PASSTHROUGH mode does not use certificates, they will be ignored'],
    ['selector label no pod can carry', `
      selector:
        istio: ingress gateway # <--
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: ["*"]`, 'spec.selector.istio', 'invalid tag value: "ingress gateway": no pod can carry this label'],
  ]);
});

describe('ServiceEntry: invalid', () => {
  invalid('ServiceEntry', [
    ['host *', `
      hosts:
      - "*" # <--
      ports: [{number: 80, name: http, protocol: HTTP}]`, 'spec.hosts[0]', 'invalid host *'],
    ['CIDR with DNS resolution', `
      hosts: [db.example.com]
      addresses: [10.0.0.0/16]
      ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
      resolution: DNS # <--`, 'spec.resolution', 'CIDR addresses are allowed only for NONE/STATIC resolution types'],
    ['address that is not an IP', `
      hosts: [db.example.com]
      addresses:
      - 300.1.1.1 # <--
      ports: [{number: 5432, name: tcp-pg, protocol: TCP}]`, 'spec.addresses[0]', '300.1.1.1 is not a valid IP'],
    ['duplicate port numbers', `
      hosts: [api.example.com]
      ports:
      - {number: 443, name: https, protocol: HTTPS}
      - name: tls
        number: 443 # <--
        protocol: TLS
      resolution: DNS`, 'spec.ports[1].number', 'service entry port 443 already defined'],
    ['duplicate port names', `
      hosts: [api.example.com]
      ports:
      - {number: 443, name: https, protocol: HTTPS}
      - name: https # <--
        number: 8443
        protocol: HTTPS
      resolution: DNS`, 'spec.ports[1].name', 'service entry port name "https" already defined'],
    ['port name with an underscore', `
      hosts: [api.example.com]
      ports:
      - number: 443
        name: https_api # <--
        protocol: HTTPS
      resolution: DNS`, 'spec.ports[0].name', 'invalid port name: https_api'],
    ['unsupported protocol', `
      hosts: [api.example.com]
      ports:
      - number: 9092
        name: kafka
        protocol: KAFKA # <--
      resolution: DNS`, 'spec.ports[0].protocol', 'unsupported protocol: KAFKA'],
    ['target port out of range', `
      hosts: [api.example.com]
      ports:
      - number: 443
        name: https
        protocol: HTTPS
        targetPort: 70000 # <--
      resolution: DNS`, 'spec.ports[0].targetPort', 'port number 70000 must be in the range 1..65535'],
    ['endpoints with resolution NONE', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      endpoints: # <--
      - address: 10.1.1.1`, 'spec.endpoints', 'no endpoints should be provided for resolution type none'],
    ['host name endpoint with STATIC resolution', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: STATIC
      endpoints:
      - address: api1.example.com # <--`, 'spec.endpoints[0].address', 'endpoint address "api1.example.com" is not a valid IP address'],
    ['endpoint port the service does not declare', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: STATIC
      endpoints:
      - address: 10.1.1.1
        ports:
          http: 8080 # <--`, 'spec.endpoints[0].ports.http', 'endpoint port 8080 is not defined by the service entry (no port named "http")'],
    ['unix endpoint with two service ports', `
      hosts: [uds.example.com]
      ports:
      - {number: 80, name: http, protocol: HTTP}
      - {number: 81, name: grpc, protocol: GRPC}
      resolution: STATIC
      endpoints:
      - address: unix:///var/run/app.sock # <--`, 'spec.endpoints[0].address', 'exactly 1 service port required for unix endpoints'],
    ['DNS resolution of a wildcard host', `
      hosts:
      - "*.example.com" # <--
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: DNS`, 'spec.hosts[0]', 'hosts must be FQDN if no endpoints are provided for resolution mode DNS'],
    ['DNS endpoint that is neither IP nor host', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: DNS
      endpoints:
      - address: api_1.example.com # <--`, 'spec.endpoints[0].address', 'endpoint address "api_1.example.com" is not a valid FQDN or an IP address'],
    ['DNS_ROUND_ROBIN with two endpoints', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: DNS_ROUND_ROBIN
      endpoints: # <--
      - address: api1.example.com
      - address: api2.example.com`, 'spec.endpoints', 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN'],
    ['selector and endpoints', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: STATIC
      workloadSelector:
        labels: {app: api}
      endpoints: # <--
      - address: 10.1.1.1`, 'spec.endpoints', 'only one of WorkloadSelector or Endpoints is allowed in Service Entry'],
    ['several hosts on a TCP port', `
      hosts: [db1.example.com, db2.example.com]
      ports:
      - number: 5432
        name: tcp-pg
        protocol: TCP # <--
      resolution: DNS`, 'spec.ports[0].protocol', 'multiple hosts provided with non-HTTP, non-TLS ports'],
    ['DYNAMIC_DNS with an exact host', `
      hosts:
      - api.example.com # <--
      ports: [{number: 80, name: http, protocol: HTTP}]
      resolution: DYNAMIC_DNS`, 'spec.hosts[0]', 'hosts must be wildcards (*.example.com) for resolution mode DYNAMIC_DNS'],
    ['DYNAMIC_DNS with a TCP port', `
      hosts: ["*.example.com"]
      ports:
      - number: 5432
        name: tcp-pg
        protocol: TCP # <--
      resolution: DYNAMIC_DNS`, 'spec.ports[0].protocol', 'resolution mode DYNAMIC_DNS supports only HTTP, HTTP2, GRPC and TLS ports, got "TCP"'],
    ['exportTo nobody and somebody', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: DNS
      exportTo: # <--
      - "~"
      - istio-system`, 'spec.exportTo', 'cannot export service entry to no one (~) and someone'],
    ['wildcard in the selector', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: STATIC
      workloadSelector:
        labels:
          app: "*" # <--`, 'spec.workloadSelector.labels.app', 'wildcard is not supported in selector: "app=*"'],
  ]);
});

describe('ServiceEntry: warnings', () => {
  warns('ServiceEntry', [
    ['TCP port without addresses', `
      hosts: [db.example.com]
      ports:
      - number: 5432
        name: tcp-pg
        protocol: TCP # <--`, 'spec.ports[0].protocol', 'addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled'],
    ['partial wildcard host', `
      hosts:
      - "*example.com" # <--
      ports: [{number: 443, name: https, protocol: HTTPS}]`, 'spec.hosts[0]', 'partial wildcard "*example.com" not allowed'],
    ['endpoint with a network but no address', `
      hosts: [api.example.com]
      ports: [{number: 443, name: https, protocol: HTTPS}]
      resolution: STATIC
      endpoints:
      - network: west # <--`, 'spec.endpoints[0].network', 'address is unset with network "west"'],
  ]);
});

describe('WorkloadEntry: invalid', () => {
  invalid('WorkloadEntry', [
    ['neither address nor network', `
      labels: {app: vm}
      address: "" # <--`, 'spec.address', 'address is required'],
    ['unix socket with ports', `
      address: unix:///var/run/app.sock
      ports: # <--
        http: 8080`, 'spec.ports', 'unix endpoint unix:///var/run/app.sock must not include ports'],
    ['unix socket directory', `
      address: unix:///var/run/ # <--`, 'spec.address', '/var/run/ is not an absolute path to a file'],
    ['address with a port', `
      address: vm1.example.com:9443 # <--`, 'spec.address', 'endpoint address "vm1.example.com:9443" is not a valid FQDN or an IP address'],
    ['port 0', `
      address: 10.0.0.5
      ports:
        http: 0 # <--`, 'spec.ports.http', 'port number 0 must be in the range 1..65535'],
    ['port name that is not a DNS label', `
      address: 10.0.0.5
      ports:
        "@": 80 # <--`, 'spec.ports["@"]', 'invalid port name: @'],
    ['label value with a slash', `
      address: 10.0.0.5
      labels:
        version: v1/canary # <--`, 'spec.labels.version', 'invalid tag value: "v1/canary"'],
  ]);

  it('reports a missing address at the spec', () => {
    expect(problems(resource('WorkloadEntry', 'labels: {app: vm}'))).toEqual([[6, 'spec', 'address is required']]);
  });
});

describe('Sidecar: invalid', () => {
  invalid('Sidecar', [
    ['egress host without a namespace', `
      egress:
      - hosts:
        - reviews.default.svc.cluster.local # <--`, 'spec.egress[0].hosts[0]', 'host must be of form namespace/dnsName'],
    ['egress host namespace not a DNS label', `
      egress:
      - hosts:
        - Team_A/* # <--`, 'spec.egress[0].hosts[0]', 'invalid namespace value "Team_A" in sidecar'],
    ['egress exclusion of a bad namespace', `
      egress:
      - hosts:
        - "*/*"
        - "~Bad_NS/*" # <--`, 'spec.egress[0].hosts[1]', 'invalid namespace value "~Bad_NS" in sidecar'],
    ['egress partial wildcard', `
      egress:
      - hosts:
        - prod/*reviews.com # <--`, 'spec.egress[0].hosts[0]', 'partial wildcard "*reviews.com" not allowed'],
    ['catch-all egress listener not last', `
      egress:
      - hosts: ["./*"] # <--
      - port: {number: 9080, name: http, protocol: HTTP}
        hosts: ["istio-system/*"]`, 'spec.egress[0]', 'sidecar: the egress listener with empty port should be the last listener in the list'],
    ['egress listeners on the same port', `
      egress:
      - port: {number: 9080, name: http, protocol: HTTP}
        hosts: ["./*"]
      - port:
          number: 9080 # <--
          name: http2
          protocol: HTTP
        hosts: ["istio-system/*"]`, 'spec.egress[1].port.number', 'sidecar: ports on IP bound listeners must be unique'],
    ['egress port with an unknown protocol', `
      egress:
      - port:
          number: 9080
          protocol: HTTP1 # <--
        hosts: ["./*"]`, 'spec.egress[0].port.protocol', 'unsupported protocol: HTTP1'],
    ['unix socket listener captured by iptables', `
      egress:
      - port: {number: 0, name: uds, protocol: HTTP}
        bind: unix:///var/run/egress.sock
        captureMode: IPTABLES # <--
        hosts: ["./*"]`, 'spec.egress[0].captureMode', 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners'],
    ['port 0 without a unix socket', `
      egress:
      - port: {number: 0, name: uds, protocol: HTTP}
        bind: 127.0.0.1 # <--
        hosts: ["./*"]`, 'spec.egress[0].bind', 'sidecar: ports with 0 value must have a unix domain socket bind address'],
    ['ingress default endpoint on another host', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        defaultEndpoint: 10.1.1.1:9080 # <--`, 'spec.ingress[0].defaultEndpoint', 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset'],
    ['ingress default endpoint port not a number', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        defaultEndpoint: 127.0.0.1:http # <--`, 'spec.ingress[0].defaultEndpoint', 'sidecar: defaultEndpoint port (http) is not a number'],
    ['ingress default endpoint without a port', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        defaultEndpoint: 127.0.0.1 # <--`, 'spec.ingress[0].defaultEndpoint', 'address 127.0.0.1: missing port in address'],
    ['ingress listeners on the same port', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        defaultEndpoint: 127.0.0.1:8080
      - port:
          number: 9080 # <--
          name: tcp
          protocol: TCP
        defaultEndpoint: 127.0.0.1:8081`, 'spec.ingress[1].port.number', 'sidecar: ports on IP bound listeners must be unique'],
    ['ingress bound to a unix socket', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        bind: unix:///var/run/in.sock # <--
        defaultEndpoint: 127.0.0.1:8080`, 'spec.ingress[0].bind', 'unix:///var/run/in.sock is not a valid IP'],
    ['ingress TLS in ISTIO_MUTUAL mode', `
      ingress:
      - port: {number: 9443, name: https, protocol: HTTPS}
        defaultEndpoint: 127.0.0.1:8443
        tls:
          mode: ISTIO_MUTUAL # <--`, 'spec.ingress[0].tls.mode', 'configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls'],
    ['ingress TLS with a credential name', `
      ingress:
      - port: {number: 9443, name: https, protocol: HTTPS}
        defaultEndpoint: 127.0.0.1:8443
        tls:
          mode: SIMPLE
          credentialName: app-cert # <--`, 'spec.ingress[0].tls.credentialName', 'sidecar: credentialName is not currently supported'],
    ['ingress TLS on a plain TCP port', `
      ingress:
      - port: {number: 9000, name: tcp, protocol: TCP}
        defaultEndpoint: 127.0.0.1:9000
        tls: # <--
          mode: SIMPLE
          serverCertificate: /etc/certs/cert.pem
          privateKey: /etc/certs/key.pem`, 'spec.ingress[0].tls', 'server cannot have TLS settings for non HTTPS/TLS ports'],
    ['egress proxy with REGISTRY_ONLY', `
      outboundTrafficPolicy:
        mode: REGISTRY_ONLY
        egressProxy: # <--
          host: egress.example.com
          port: {number: 3128}`, 'spec.outboundTrafficPolicy.egressProxy', 'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode'],
    ['egress proxy without a port', `
      outboundTrafficPolicy:
        mode: ALLOW_ANY
        egressProxy: # <--
          host: egress.example.com`, 'spec.outboundTrafficPolicy.egressProxy', 'sidecar: egress_proxy port must be non-nil'],
    ['egress proxy host with a wildcard', `
      outboundTrafficPolicy:
        mode: ALLOW_ANY
        egressProxy:
          host: "*.example.com" # <--
          port: {number: 3128}`, 'spec.outboundTrafficPolicy.egressProxy.host', 'domain name "*.example.com" invalid (label "*" invalid)'],
    ['empty inbound connection pool', `
      inboundConnectionPool: {} # <--`, 'spec.inboundConnectionPool', 'connection pool must have at least one field'],
    ['negative inbound max connections', `
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        connectionPool:
          tcp:
            maxConnections: -1 # <--`, 'spec.ingress[0].connectionPool.tcp.maxConnections', 'max connections must be non-negative'],
    ['wildcard in the workload selector', `
      workloadSelector:
        labels:
          app: "*" # <--
      egress:
      - hosts: ["./*"]`, 'spec.workloadSelector.labels.app', 'wildcard is not supported in selector: "app=*"'],
  ]);

  it('refuses an empty Sidecar at spec', () => {
    expect(problems(resource('Sidecar', 'egress: []'))).toEqual([[6, 'spec', 'sidecar: empty configuration provided']]);
  });
});

describe('Sidecar: warnings', () => {
  warns('Sidecar', [
    ['host already imported by a namespace wildcard', `
      egress:
      - hosts:
        - "prod/*"
        - prod/reviews.prod.svc.cluster.local # <--`, 'spec.egress[0].hosts[1]', 'duplicated egress host: prod/reviews.prod.svc.cluster.local'],
    ['*/* with other hosts', `
      egress:
      - hosts: # <--
        - "*/*"
        - prod/reviews.prod.svc.cluster.local`, 'spec.egress[0].hosts', '`*/*` host select all resources, no other hosts can be added'],
    ['HTTP pool on a TCP port', `
      ingress:
      - port: {number: 9000, name: tcp, protocol: TCP}
        connectionPool:
          http: # <--
            http1MaxPendingRequests: 10`, 'spec.ingress[0].connectionPool.http', 'sidecar: HTTP connection pool settings are configured for port 9000 ("tcp") but its protocol is not HTTP (TCP); only TCP settings will apply'],
    ['selector without labels', `
      workloadSelector: {} # <--
      egress:
      - hosts: ["./*"]`, 'spec.workloadSelector.labels', 'sidecar: workload selector specified without labels, will be applied to all services in namespace'],
  ]);
});

describe('valid listeners and entries', () => {
  it.each([
    ['Gateway with HTTP, HTTPS redirect, SIMPLE, MUTUAL and passthrough servers', 'Gateway', `
      selector: {istio: ingressgateway}
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: ["*/bookinfo.example.com", "./*.internal.example.com"]
        tls: {httpsRedirect: true}
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: [prod/bookinfo.example.com]
        tls: {mode: SIMPLE, credentialName: bookinfo-cert, minProtocolVersion: TLSV1_2}
      - port: {number: 8443, name: mtls, protocol: HTTPS}
        hosts: [partners.example.com]
        tls: {mode: MUTUAL, serverCertificate: /etc/c.pem, privateKey: /etc/k.pem, caCertificates: /etc/ca.pem}
      - port: {number: 15443, name: tls, protocol: TLS}
        hosts: ["*.local"]
        tls: {mode: AUTO_PASSTHROUGH}
      - port: {number: 0, name: uds, protocol: HTTP}
        bind: unix://@gateway
        hosts: ["*"]`],
    ['ServiceEntry with STATIC endpoints', 'ServiceEntry', `
      hosts: [mongo.example.com]
      addresses: [10.20.0.0/16, 2001:db8::/32]
      location: MESH_INTERNAL
      ports:
      - {number: 27017, name: mongo, protocol: MONGO, targetPort: 27018}
      resolution: STATIC
      endpoints:
      - address: 10.20.1.1
        ports: {mongo: 27019}
        labels: {zone: a}
      - address: 2001:db8::1
      exportTo: ["~"]`],
    ['ServiceEntry with DYNAMIC_DNS', 'ServiceEntry', `
      hosts: ["*.googleapis.com", "*.example.com"]
      ports:
      - {number: 80, name: http, protocol: HTTP}
      - {number: 443, name: tls, protocol: TLS}
      resolution: DYNAMIC_DNS`],
    ['WorkloadEntry for a VM', 'WorkloadEntry', `
      address: vm1.example.com
      ports: {http: 8080, grpc-api: 9090}
      labels: {app: ratings, version: v3}
      network: vm-network
      locality: us-west/zone1/a
      weight: 10
      serviceAccount: ratings`],
    ['Sidecar with ingress, egress and an egress proxy', 'Sidecar', `
      workloadSelector:
        labels: {app: productpage}
      ingress:
      - port: {number: 9080, name: http, protocol: HTTP}
        defaultEndpoint: 127.0.0.1:8080
      - port: {number: 9443, name: https, protocol: HTTPS}
        defaultEndpoint: "[::1]:8443"
        tls: {mode: SIMPLE, serverCertificate: /etc/c.pem, privateKey: /etc/k.pem}
      egress:
      - port: {number: 0, name: uds, protocol: HTTP}
        bind: unix:///var/run/egress.sock
        hosts: ["./*"]
      - hosts: ["./*", "istio-system/*", "~/internal.example.com", "~legacy/*"]
      outboundTrafficPolicy:
        mode: ALLOW_ANY
        egressProxy: {host: egress.example.com, port: {number: 3128}}`],
  ])('%s', (_title, kind, spec) => {
    const yaml = resource(kind, spec);
    expect(problems(yaml)).toEqual([]);
    expect(problems(yaml, 'warning')).toEqual([]);
  });
});

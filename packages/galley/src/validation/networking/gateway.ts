// Gateway (networking.istio.io): Istio's ValidateGateway and validateServer, with the CRD's rules.
import type { FieldPath, GatewaySpec, Server } from '@weft/model';
import { isIstioDns1123Label } from '../common.ts';
import { kindValidator, type ValidationContext } from '../context.ts';
import {
  checkServerTLS,
  filled,
  ipAddressError,
  isHTTPProtocol,
  isObject,
  isTLSProtocol,
  items,
  labelProblems,
  namespaceSlashHostErrors,
  num,
  parseProtocol,
  portError,
  present,
  q,
  str,
  unixAddressError,
  unixPrefix,
} from './shared.ts';

/** Annotation on Gateways Istio derives from Gateway API Gateways; they get looser name rules. */
const gatewaySemanticsAnnotation = 'internal.istio.io/gateway-semantics';

export const gatewayValidator = kindValidator('networking.istio.io/Gateway', (spec: GatewaySpec, ctx) => {
  const gatewaySemantics = ctx.config.metadata.annotations?.[gatewaySemanticsAnnotation] === 'gateway';
  const name = ctx.config.metadata.name;
  // Gateway names are referenced as `<namespace>/<name>`; a dot would be read as the legacy FQDN form.
  if (!isIstioDns1123Label(name) && !gatewaySemantics) ctx.metaError(['name'], `invalid gateway name: ${q(name)}`);

  const servers = items(spec.servers);
  if (servers.length === 0) ctx.error(present(spec.servers) ? ['servers'] : [], 'gateway must have at least one server');
  servers.forEach((server, i) => {
    if (!isObject(server)) {
      ctx.error(['servers', i], 'server may not be nil');
      return;
    }
    checkServer(ctx, ['servers', i], server, gatewaySemantics);
  });

  const portNames = new Set<string>();
  servers.forEach((server, i) => {
    if (!isObject(server) || !isObject(server.port)) return;
    const portName = str(server.port.name);
    if (portNames.has(portName)) ctx.error(['servers', i, 'port', 'name'], `port names in servers must be unique: duplicate name ${portName}`);
    portNames.add(portName);
    if (!isHTTPProtocol(parseProtocol(server.port.protocol)) && isObject(server.tls) && server.tls.httpsRedirect === true) {
      ctx.warning(['servers', i, 'tls', 'httpsRedirect'], 'tls.httpsRedirect should only be used with http servers');
    }
  });

  // Istio does not validate the selector; a label no pod can carry selects nothing, so say so.
  for (const [key, message] of labelProblems(spec.selector)) {
    ctx.warning(['selector', key], `${message}: no pod can carry this label, so the gateway selects nothing`);
  }
});

function checkServer(ctx: ValidationContext, p: FieldPath, server: Server, gatewaySemantics: boolean): void {
  if (!filled(server.hosts)) {
    if (present(server.hosts)) ctx.error([...p, 'hosts'], 'server config must contain at least one host');
  } else {
    items(server.hosts).forEach((host, j) => {
      if (typeof host !== 'string') return;
      for (const err of namespaceSlashHostErrors(host, true, gatewaySemantics)) ctx.error([...p, 'hosts', j], err);
    });
  }

  const bind = str(server.bind);
  const unix = bind.startsWith(unixPrefix);
  const port = server.port;
  let portOk = false;
  if (isObject(port)) {
    portOk = true;
    const pp: FieldPath = [...p, 'port'];
    if (parseProtocol(port.protocol) === 'Unsupported' && present(port.protocol)) {
      ctx.error([...pp, 'protocol'], `invalid protocol ${q(str(port.protocol))}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP`);
      portOk = false;
    }
    const number = num(port.number);
    if (number > 0 || !unix) {
      const err = portError(number);
      if (err && present(port.number)) {
        ctx.error([...pp, 'number'], err);
        portOk = false;
      }
    }
    if (num(port.targetPort) > 0) {
      ctx.error([...pp, 'targetPort'], 'targetPort has no impact on Gateways');
      portOk = false;
    }
    if (port.name === '') {
      ctx.error([...pp, 'name'], 'port name must be set');
      portOk = false;
    }
    if (!present(port.name) || !present(port.number) || !present(port.protocol)) portOk = false;
  }

  if (unix) {
    const err = unixAddressError(bind.slice(unixPrefix.length));
    if (err) ctx.error([...p, 'bind'], err);
    if (isObject(port) && num(port.number) !== 0) ctx.error([...p, 'port', 'number'], `port number must be 0 for unix domain socket: ${bind}`);
  } else if (bind !== '') {
    const err = ipAddressError(bind);
    if (err) ctx.error([...p, 'bind'], err);
  }

  checkServerTLS(ctx, [...p, 'tls'], server.tls);

  if (portOk && isObject(port)) {
    const protocol = parseProtocol(port.protocol);
    const tls = server.tls;
    if (isTLSProtocol(protocol) && !present(tls)) {
      ctx.error([...p, 'port', 'protocol'], 'server must have TLS settings for HTTPS/TLS protocols');
    } else if (!isTLSProtocol(protocol) && isObject(tls)) {
      // A plain HTTP server may only carry `httpsRedirect`.
      if (isHTTPProtocol(protocol)) {
        const passthrough = tls.mode === undefined || tls.mode === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH';
        if (!passthrough || str(tls.caCertificates) || str(tls.privateKey) || str(tls.serverCertificate)) {
          ctx.error([...p, 'tls'], 'server cannot have TLS settings for plain text HTTP ports');
        }
      } else {
        ctx.error([...p, 'tls'], 'server cannot have TLS settings for non HTTPS/TLS ports');
      }
    }
  }
}

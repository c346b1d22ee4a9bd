// The tutorial through the netns driver: each pod a network namespace with capture rules, weftd in
// the host's namespace (as root; skipped with a message otherwise). The driver removes every
// namespace, link and process it made, and the last test checks that nothing is left.
import { netnsDriverSkipReason, startNetnsDriver } from './netns-driver.ts';
import { describeBookinfo } from './scenarios.ts';

describeBookinfo('BookInfo tutorial, netns driver (pods as network namespaces, capture mode)', netnsDriverSkipReason(), () => startNetnsDriver());

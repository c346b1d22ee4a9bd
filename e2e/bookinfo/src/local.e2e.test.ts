// The tutorial through the local driver: the mesh `weftctl up` runs (no root), then the screenshot
// test and the Grafana panels check (its Prometheus addon) on the same mesh.
import { grafanaScenario } from './grafana.ts';
import { startLocalDriver } from './local-driver.ts';
import { describeBookinfo } from './scenarios.ts';
import { screenshotScenario } from './screenshot.ts';

describeBookinfo('BookInfo tutorial, local driver (weftctl up mesh, loopback addresses)', undefined, () => startLocalDriver(), (driver) => {
  screenshotScenario(driver);
  grafanaScenario(driver);
});

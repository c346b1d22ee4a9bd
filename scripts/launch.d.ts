// Types of launch.js (plain JavaScript so that it loads on old Nodes).
export declare const dataPlaneNodeFlags: readonly string[];
export declare const dataPlaneEnv: Readonly<Record<string, string>>;
export declare function launch(
  binUrl: string,
  name: string,
  run: () => Promise<number>,
  options?: { exit?: 'soft' | 'hard'; nodeFlags?: readonly string[]; env?: Readonly<Record<string, string>> },
): Promise<void>;

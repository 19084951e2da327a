// nginx as the reference HTTP server of the benchmarks: one configuration
// (sendfile on, no access log, every temp path in the run's folder so
// nothing lands in /var) started in a namespace and awaited until it answers.
import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Netns } from '../qemu/netns.ts';

export interface NginxOptions {
  /** the run's folder: pid file, logs, temp paths, the configuration */
  dir: string;
  /** the document root (world-readable: workers drop to an unprivileged user) */
  root: string;
  address: string;
  port: number;
  /** worker_processes (default 1) */
  workers?: number | 'auto';
  /** worker_connections (default 1024) */
  connections?: number;
}

export function nginxConf(o: NginxOptions): string {
  const tmp = path.join(o.dir, 'tmp');
  return `worker_processes ${o.workers ?? 1};
daemon off;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/nginx-error.log warn;
events { worker_connections ${o.connections ?? 1024}; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${tmp};
  proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp};
  uwsgi_temp_path ${tmp};
  scgi_temp_path ${tmp};
  server { listen ${o.address}:${o.port}; root ${o.root}; }
}
`;
}

/**
 * Starts nginx in `ns` and resolves once `probePath` (a file under the root)
 * is served; nginx prints nothing when it starts well, so it is polled.
 */
export async function startNginx(ns: Netns, o: NginxOptions, probePath: string): Promise<ChildProcess> {
  await mkdir(path.join(o.dir, 'tmp'), { recursive: true });
  const conf = path.join(o.dir, 'nginx.conf');
  await writeFile(conf, nginxConf(o));
  const nginx = ns.spawn('nginx', ['-p', o.dir, '-e', path.join(o.dir, 'nginx-error.log'), '-c', conf]);
  const url = `http://${o.address}:${o.port}/${probePath.replace(/^\//, '')}`;
  // generous: a loaded 2-core machine may take seconds to start the workers
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await ns.exec('curl', ['-fsS', '-o', '/dev/null', '-r', '0-0', url], { timeout: 5000 });
    if (r.code === 0) return nginx;
    if (nginx.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start serving ${url}: ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

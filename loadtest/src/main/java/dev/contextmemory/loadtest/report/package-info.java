/**
 * What a run found ({@link dev.contextmemory.loadtest.report.RunReport}) and its three
 * renderings: the console table, {@code report.json} (the fixed shape CI and other tools read) and
 * the self-contained {@code report.html}.
 */
package dev.contextmemory.loadtest.report;

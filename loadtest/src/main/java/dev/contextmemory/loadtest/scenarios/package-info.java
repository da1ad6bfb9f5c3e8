/**
 * The eight scenarios of the issue, written in the DSL, the recall sampler of the memory searches
 * and the JDBC baselines (the database's own floor for each write and search).
 */
package dev.contextmemory.loadtest.scenarios;

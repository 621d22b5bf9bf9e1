// The published JSON Schemas (shared/schemas.ts) over HTTP: `GET /schemas` lists them, and
// `GET /schemas/{name}.schema.json` gives one (relative `$ref`s resolve next to it). No personal data.
import { Controller, Get, Header, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { publishedSchemas } from '../shared/schemas.js';
import { notFound } from './errors.js';

@ApiTags('schemas')
@Controller('schemas')
export class SchemasController {
  private readonly schemas = new Map(publishedSchemas().map((s) => [`${s.name}.schema.json`, s]));

  @Get()
  @ApiOperation({ summary: 'The JSON Schemas of every HTTP body and Kafka message medaid accepts and sends' })
  list() {
    return [...this.schemas.entries()].map(([file, s]) => ({ name: s.name, title: s.title, where: s.where, url: `/schemas/${file}` }));
  }

  @Get(':file')
  @Header('content-type', 'application/schema+json; charset=utf-8')
  @ApiOperation({ summary: 'One JSON Schema (draft 2020-12), with an example' })
  one(@Param('file') file: string) {
    const found = this.schemas.get(file);
    if (found === undefined) throw notFound(`schema ${file}`);
    return found.schema;
  }
}
